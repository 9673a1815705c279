"""`python -m bench [--quick]`: every benchmark, one after another (see bench/run.py)."""
import sys

from bench.run import main

sys.exit(main())
