"""Interactive widgets of the course (anywidget).

They follow one rule: precompute in Python with :mod:`adcourse.metrics`,
interact in the browser. The front ends need no kernel, so the widgets stay
interactive in the static HTML book; in Jupyter their state (e.g.
``threshold``) is also synced back to Python.
"""

from adcourse.course.widgets._base import PrecomputedWidget, decode_array, encode_array
from adcourse.course.widgets.scoremap import ScoreMapExplorer
from adcourse.course.widgets.threshold import ThresholdExplorer

__all__ = ["ThresholdExplorer", "ScoreMapExplorer", "PrecomputedWidget", "encode_array", "decode_array"]
