"""``python -m uqlib``: the ``uqlib`` command (see :mod:`uqlib.cli`)."""

import sys

from uqlib.cli import main

sys.exit(main())
