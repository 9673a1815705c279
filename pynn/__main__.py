"""`python -m pynn ...`: the command line (`pynn.cli`)."""
import sys

from .cli.main import RECIPES, main

__all__ = ["RECIPES", "main"]

if __name__ == "__main__":
    sys.exit(main())
