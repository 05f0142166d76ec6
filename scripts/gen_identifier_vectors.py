#!/usr/bin/env python3
"""Regenerates ``spec/vectors/identifiers.json`` from ``tests/spec/vector_cases.py``.

    python scripts/gen_identifier_vectors.py            # rewrites the vectors file
    python scripts/gen_identifier_vectors.py --check    # exits 1 if the file is not up to date

For every case, the configuration is built by ``vector_cases.py``; its neutral
description comes from ``vector_cases.describe``; the identifier comes from
``xpm.identifier`` and the preimage is the exact byte string that xpm hashed for
the top-level configuration (checked to hash to the identifier). The relations
between cases are checked before anything is written.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors" / "identifiers.json"
CASES_FILE = ROOT / "tests" / "spec" / "vector_cases.py"
FORMAT_VERSION = 1


def load_cases() -> ModuleType:
    """Imports ``tests/spec/vector_cases.py`` (``tests`` is not a package on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # so that `import xpm` finds this checkout
    name = "_xpm_identifier_vector_cases"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, CASES_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: configuration annotations are resolved through sys.modules.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def identifier_and_preimage(config: Any, identify: Any) -> tuple[str, bytes]:
    """``identify(config)`` (xpm's identifier) and the bytes xpm hashed for the top-level configuration."""
    from blake3 import blake3

    import xpm.ids as ids

    hashed: list[bytes] = []
    original = ids.blake3

    def recording(data: Any = b"", *args: Any, **kwargs: Any) -> Any:
        hashed.append(bytes(data))
        return original(data, *args, **kwargs)

    ids.blake3 = recording
    try:
        ident = identify(config)
    finally:
        ids.blake3 = original
    # The top-level configuration is hashed last (after everything it refers to).
    if not hashed or blake3(hashed[-1]).hexdigest() != ident:
        raise RuntimeError("could not capture the preimage of the top-level configuration (was it cached?)")
    return ident, hashed[-1]


def build_document(cases: ModuleType | None = None) -> dict[str, Any]:
    """The vectors document, as a JSON-ready dict."""
    if cases is None:
        cases = load_cases()
    import xpm.ids as ids

    entries = []
    identifiers: dict[str, str] = {}
    for name, case in cases.CASES.items():
        config = case.build()
        description = cases.describe(config)
        ident, preimage = identifier_and_preimage(config, cases.identify)
        # A second, fresh computation must agree (nothing depends on state left behind).
        if cases.identify(case.build()) != ident:
            raise RuntimeError(f"{name}: two computations of the identifier differ")
        identifiers[name] = ident
        entries.append(
            {
                "name": name,
                "description": case.description,
                "config": description,
                "identifier": ident,
                "preimage": preimage.hex(),
            }
        )

    relations = []
    for kind, a, b in cases.RELATIONS:
        if (identifiers[a] == identifiers[b]) != (kind == "equal"):
            raise RuntimeError(f"relation does not hold: {kind} {a} {b}")
        relations.append({kind: [a, b]})

    return {
        "version": FORMAT_VERSION,
        "spec": "spec/identifiers.md",
        "generator": "scripts/gen_identifier_vectors.py",
        "hash": "blake3-256",
        "domain_hex": ids.DOMAIN.hex(),
        "cases": entries,
        "relations": relations,
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file on disk is not up to date")
    parser.add_argument("--output", type=Path, default=VECTORS, help=f"the vectors file (default: {VECTORS})")
    args = parser.parse_args(argv)

    text = render(build_document())
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"{args.output}: missing; run {Path(__file__).name} to create it", file=sys.stderr)
            return 1
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), "on disk", "generated", lineterm="", n=2
            )
            lines = list(diff)
            print("\n".join(lines[:60]), file=sys.stderr)
            if len(lines) > 60:
                print(f"... ({len(lines) - 60} more diff lines)", file=sys.stderr)
            print(f"{args.output}: not up to date; run {Path(__file__).name} to regenerate it", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date ({text.count(chr(10))} lines)")
        return 0

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
