"""``python -m adcourse`` = the ``adcourse`` command (see :mod:`adcourse.course.cli`)."""

import sys

from adcourse.course.cli import main

sys.exit(main())
