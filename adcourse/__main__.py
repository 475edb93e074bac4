"""``python -m adcourse`` = the ``adcourse`` command (see :mod:`adcourse.cli`)."""

import sys

from .cli import main

sys.exit(main())
