"""Interactive widgets of the course (anywidget).

They follow one rule: precompute in Python with :mod:`adcourse.metrics`,
interact in the browser. The front ends need no kernel, so the widgets stay
interactive in the static HTML book; in Jupyter their state (e.g.
``threshold``) is also synced back to Python.
"""

from ._base import PrecomputedWidget, decode_array, encode_array
from .scoremap import ScoreMapExplorer
from .threshold import ThresholdExplorer

__all__ = ["ThresholdExplorer", "ScoreMapExplorer", "PrecomputedWidget", "encode_array", "decode_array"]
