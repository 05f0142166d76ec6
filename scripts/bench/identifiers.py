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

from xpm import Config, Param, field, identifier  # noqa: E402


class Leaf(Config):
    __xpmid__ = "bench.leaf"
    a: Param[int]
    b: Param[float]
    c: Param[str]


class Middle(Config):
    __xpmid__ = "bench.middle"
    leaf: Param[Leaf]
    d: Param[int]
    e: Param[list[int]]


class Top(Config):
    __xpmid__ = "bench.top"
    middle: Param[Middle]
    f: Param[str]
    g: Param[float]
    h: Param[int] = field(default=3, ignore_default=True)


def make(i: int) -> Top:
    """A fresh depth-3 tree with 10 parameters, different for each i."""
    leaf = Leaf.C(a=i, b=i / 7, c=f"leaf-{i}")
    middle = Middle.C(leaf=leaf, d=i % 13, e=[i, i + 1, i + 2])
    return Top.C(middle=middle, f="top", g=0.5, h=i % 5)


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
