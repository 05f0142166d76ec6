"""Benchmark: identifiers per second for a nested configuration (depth 3, 10 parameters).

The configurations are those of W6 (``top(i)`` in compare_tasks.py), and what is
timed is what W6 times: ``config.__identifier__()``, each on a configuration never
hashed before (no cache), on one core.

Run: ``python scripts/bench/identifiers.py [--n 20000] [--repeat 5]``.

``--against FILE`` also times another version of ``xpm/ids.py`` (for instance
``git show HEAD~1:xpm/ids.py > /tmp/ids_before.py``) on the same configurations, in
turns with the current one, so that both see the same load: its ``digest()`` is
called directly (``__identifier__`` is ``Identifier(digest)``), and so is the current
one's for that comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compare_tasks import Leaf, Middle, Top  # noqa: E402 - the configurations of W6 (scripts/bench/compare.py)
from compare_tasks import top as make  # noqa: E402

import xpm.ids  # noqa: E402


def rate(configs: list[Any], compute: Callable[[Any], Any]) -> float:
    start = time.perf_counter()
    for cfg in configs:
        compute(cfg)
    return len(configs) / (time.perf_counter() - start)


def identifier_rate(n: int) -> float:
    """What W6 times: ``__identifier__()`` of n fresh configurations."""
    configs = [make(i) for i in range(n)]
    start = time.perf_counter()
    for cfg in configs:
        cfg.__identifier__()
    return n / (time.perf_counter() - start)


def summary(rates: list[float]) -> str:
    return f"median {statistics.median(rates):,.0f} (min {min(rates):,.0f}, max {max(rates):,.0f})"


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ids_against", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def against(path: str, n: int, repeat: int) -> None:
    """Times ``digest()`` of the module at ``path`` and of xpm.ids, in turns, on the same configurations."""
    other = load(path)
    configs = [make(i) for i in range(n)]
    classes = [cls.__xpmtype__ for cls in (Top, Middle, Leaf)]  # type: ignore[attr-defined]
    # Each version keeps its own per-class plan in ClassInfo.id_plan: swapped at each turn
    plans: dict[ModuleType, list[Any]] = {}
    for module in (other, xpm.ids):
        for info in classes:
            info.id_plan = None
        module.digest(configs[0])
        plans[module] = [info.id_plan for info in classes]
    rates: dict[ModuleType, list[float]] = {other: [], xpm.ids: []}
    results: dict[ModuleType, list[bytes]] = {}
    for _ in range(repeat):
        for module in (other, xpm.ids):
            for info, plan in zip(classes, plans[module]):
                info.id_plan = plan
            rates[module].append(rate(configs, module.digest))
            results[module] = [module.digest(cfg) for cfg in configs[:100]]
    assert results[other] == results[xpm.ids], "the two versions give different identifiers"
    print(f"digest()/s, {path}: {summary(rates[other])}")
    print(f"digest()/s, xpm/ids.py: {summary(rates[xpm.ids])}")
    print(f"ratio of the medians: {statistics.median(rates[xpm.ids]) / statistics.median(rates[other]):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", metavar="FILE", help="another version of xpm/ids.py to time in turns")
    args = parser.parse_args()
    if args.against:
        against(args.against, args.n, args.repeat)
        return
    rates = [identifier_rate(args.n) for _ in range(args.repeat)]
    print(
        f"identifiers/s (depth 3, 10 parameters, fresh configurations): {summary(rates)},"
        f" {args.repeat} runs of {args.n}"
    )


if __name__ == "__main__":
    main()
