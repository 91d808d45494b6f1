"""scaling: a scaling-law research toolkit."""

__version__ = "0.1.0"
