"""adcourse: the package behind the course "Anomaly detection in images"."""

__version__ = "0.1.0"
