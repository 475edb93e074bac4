"""The teaching machinery: exercise checks, exercise generation, grading, widgets, the command line.

* :mod:`~adcourse.course.checks` -- the checks of the exercises' ``check`` cells;
* :mod:`~adcourse.course.exercises` -- exercises generated from the solution notebooks;
* :mod:`~adcourse.course.grading` -- grading of submissions through nbval;
* :mod:`~adcourse.course.widgets` -- the threshold and score-map explorers (anywidget);
* :mod:`~adcourse.course.cli` -- the ``adcourse`` command.

The detectors never import this package: an engineer's import of
:mod:`adcourse.vectors`, :mod:`adcourse.images` or :mod:`adcourse.deep` stays free of it.
"""
