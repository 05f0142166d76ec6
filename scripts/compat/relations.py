#!/usr/bin/env python3
"""Records which configurations of ``tests/compat/corpus.py`` share an identifier.

    python scripts/compat/relations.py --python PYTHON [--output FILE]

PYTHON is an interpreter that imports experimaestro (for instance the one
``scripts/bench/compare.py`` installs, ``~/.cache/xpm-bench/experimaestro-2.7.0/bin/python``).
The output lists the corpus's cases as classes of equal identifiers: the identifier
*relations* carry over between libraries (the identifier values do not: each has its own
encoding). ``tests/compat/expected_relations.json`` is this output for experimaestro 2.7.0;
``tests/compat/test_relations.py`` checks that xpm finds the same classes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "compat" / "corpus.py"
DEFAULT_OUTPUT = ROOT / "tests" / "compat" / "expected_relations.json"

#: What runs in the other interpreter: imports the corpus by path, prints {case: identifier}
_PROGRAM = """{prelude}
import importlib.util, json, sys, warnings
warnings.simplefilter("ignore")
spec = importlib.util.spec_from_file_location("compat_corpus", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["compat_corpus"] = module
spec.loader.exec_module(module)
result = {}
for name, build in module.CASES.items():
    try:
        result[name] = module.identifier(build())
    except Exception as exc:
        result[name] = "error: " + type(exc).__name__
print(json.dumps(result))
"""


def identifiers(python: str, prelude: str = "") -> dict[str, str]:
    """{case: identifier (or "error: ...")} computed by ``python``, after running ``prelude``."""
    program = _PROGRAM.replace("{prelude}", prelude)
    out = subprocess.run([python, "-c", program, str(CORPUS)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def classes(ids: dict[str, str]) -> list[list[str]]:
    """The cases grouped by identifier (errors each on their own, named), sorted."""
    groups: dict[str, list[str]] = {}
    for name, ident in ids.items():
        groups.setdefault(ident if not ident.startswith("error") else f"{ident}:{name}", []).append(name)
    return sorted(sorted(g) for g in groups.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="an interpreter that imports experimaestro")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    ids = identifiers(args.python)
    version = subprocess.run(
        [args.python, "-c", "import experimaestro; print(experimaestro.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    errors = sorted(name for name, ident in ids.items() if ident.startswith("error"))
    document = {"experimaestro": version, "classes": classes(ids), "errors": errors}
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(ids)} cases, {len(document['classes'])} classes, {len(errors)} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
