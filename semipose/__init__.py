"""semipose: semi-supervised training of detector-free multi-person pose estimators."""

__version__ = "0.1.0"
