"""The core engine's benchmarks: `python benchmarks/bench_core.py` (the same as `hypemu bench`).

Targets and method: see hypemu/bench.py. Every ratio is against bare Unicorn in the same process.
"""

import sys

from hypemu.bench import main

if __name__ == "__main__":
    sys.exit(main())
