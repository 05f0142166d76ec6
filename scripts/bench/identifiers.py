"""Benchmark: identifiers per second for a nested configuration (depth 3, 10 parameters).

Each identifier is computed on a configuration never hashed before (no cache),
on one core. Run: ``python scripts/bench/identifiers.py [--n 20000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compare_tasks import top as make  # noqa: E402 - the configurations of W6 (scripts/bench/compare.py)

from xpm import identifier  # noqa: E402


def run(n: int) -> float:
    configs = [make(i) for i in range(n)]
    start = time.perf_counter()
    for cfg in configs:
        identifier(cfg)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rates = [run(args.n) for _ in range(args.repeat)]
    print(f"identifiers/s (depth 3, 10 parameters, fresh configurations): median {statistics.median(rates):,.0f}"
          f" (min {min(rates):,.0f}, max {max(rates):,.0f}, {args.repeat} runs of {args.n})")


if __name__ == "__main__":
    main()
