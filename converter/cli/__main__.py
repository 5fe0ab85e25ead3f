"""`python -m fomm_convert.cli`: the command line (build-all runs each build this way)."""
import sys

from . import main

sys.exit(main())
