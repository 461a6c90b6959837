"""xsmig: capture, inspect and hand over the state of xenstored."""

__version__ = "0.1.0"
