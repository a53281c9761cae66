"""``python -m benchmarks ...`` is ``mast3r-bench ...`` (used under torchrun)."""

import sys

from benchmarks.cli import main

sys.exit(main())
