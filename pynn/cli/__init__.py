"""The command line (`pynn ...` / `python -m pynn ...`)."""
from .main import main

__all__ = ["main"]
