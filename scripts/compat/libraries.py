#!/usr/bin/env python3
"""Imports every module of real libraries written for experimaestro, through xpm's drop-in.

    python scripts/compat/libraries.py [--wheels DIR] [--json]

The libraries (pinned below) are downloaded once as wheels, without their
dependencies, into DIR (default ``~/.cache/xpm-compat-wheels``) and unpacked in a
temporary folder. Their third-party dependencies that are not installed (torch,
transformers, numpy...) are faked, as a documentation build fakes them
(``xpm.docsloader``): what is checked is the experimaestro API they use, which
the drop-in serves for real. For each library the report gives the modules
imported and, grouped by message, those that failed, with the frame that raised:
in ``xpm`` (the drop-in or xpm refused something), or elsewhere (a faked
dependency did not behave as the real one would).

``tests/compat/test_real_libraries.py`` runs the same walk and checks the result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: The libraries, pinned: (distribution, version, its top-level packages)
LIBRARIES = [
    ("datamaestro", "1.16.1", ["datamaestro"]),
    ("datamaestro-ir", "0.5.0", ["datamaestro_ir"]),
    ("xpm-torch", "0.3.1", ["xpm_torch"]),
    ("experimaestro-ir", "1.5.0", ["xpmir"]),
]
DEFAULT_WHEELS = Path.home() / ".cache" / "xpm-compat-wheels"

#: Runs in a fresh interpreter: argv = site folder, then the packages to walk. Prints one JSON object.
_WALK = r"""
import importlib, importlib.machinery, json, pkgutil, re, sys, traceback, warnings
warnings.simplefilter("ignore")
import xpm.compat
xpm.compat.install()
from xpm.docsloader import DependencyInjectorFinder

site, packages = sys.argv[1], sys.argv[2:]
sys.path.insert(0, site)
OURS = {"experimaestro", *packages}
OURS.update(name for name in __import__("os").listdir(site) if name.isidentifier())
FAKED = set()

class Missing:
    # Fakes a top-level module that cannot be found (a dependency that is not installed).
    def match(self, name):
        top = name.split(".")[0]
        if top in OURS:
            return False
        if top in FAKED:
            return True
        if top in sys.modules or top in sys.builtin_module_names:
            return False
        if importlib.machinery.PathFinder.find_spec(top) is None:
            FAKED.add(top)
            return True
        return False

DependencyInjectorFinder.install(Missing())
XPM = xpm.__path__[0]
report = {}
for package in packages:
    imported, failed = [], []
    def walk(name):
        try:
            module = importlib.import_module(name)
        except BaseException as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            last = frames[-1] if frames else None
            in_xpm = bool(last and last.filename.startswith(XPM))
            failed.append({"module": name, "error": type(exc).__name__,
                           "message": str(exc).splitlines()[0][:300] if str(exc) else "",
                           "raised_in_xpm": in_xpm})
            return
        imported.append(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", []) or [], name + "."):
            walk(info.name)
    walk(package)
    report[package] = {"imported": imported, "failed": failed}
report["faked"] = sorted(FAKED)
print(json.dumps(report))
"""


def download(wheels: Path) -> list[Path]:
    """The pinned wheels in ``wheels``, downloaded when missing (no dependencies)."""
    wheels.mkdir(parents=True, exist_ok=True)
    found = []
    for dist, version, _ in LIBRARIES:
        name = dist.replace("-", "_")
        have = sorted(wheels.glob(f"{name}-{version}-*.whl"))
        if not have:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                 "-d", str(wheels), f"{dist}=={version}"],
                check=True, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            have = sorted(wheels.glob(f"{name}-{version}-*.whl"))
        if not have:
            raise FileNotFoundError(f"no wheel for {dist}=={version} in {wheels}")
        found.append(have[0])
    return found


def walk(wheels: Path, python: str = sys.executable) -> dict:
    """Unpacks the wheels and imports every module of each library through the drop-in."""
    files = download(wheels)
    with tempfile.TemporaryDirectory(prefix="xpm-compat-libs-") as tmp:
        for wheel in files:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(tmp)
        packages = [p for _, _, tops in LIBRARIES for p in tops]
        env = {k: v for k, v in os.environ.items() if k != "XPM_EXPERIMAESTRO"}
        out = subprocess.run(
            [python, "-c", _WALK, tmp, *packages], capture_output=True, text=True, env=env, timeout=600
        )
        if out.returncode != 0:
            raise RuntimeError(f"the import walk failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS)
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    report = walk(args.wheels)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("faked dependencies:", ", ".join(report["faked"]))
    for _, _, tops in LIBRARIES:
        for package in tops:
            result = report[package]
            print(f"{package}: {len(result['imported'])} modules imported, {len(result['failed'])} failed")
            groups: dict[str, list[str]] = {}
            for failure in result["failed"]:
                where = "xpm" if failure["raised_in_xpm"] else "elsewhere"
                groups.setdefault(f"[{where}] {failure['error']}: {failure['message'][:140]}", []).append(
                    failure["module"]
                )
            for message, modules in sorted(groups.items(), key=lambda item: -len(item[1])):
                print(f"  {len(modules):3d} {message}  (e.g. {modules[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
