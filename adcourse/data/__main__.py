"""``python -m adcourse.data``: regenerate the committed nanofibre sample (see :mod:`adcourse.data.nanofibers`)."""

from adcourse.data.nanofibers import main

main()
