"""socialcare: social media customer care workers."""

__version__ = "0.1.0"
