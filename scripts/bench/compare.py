"""Side-by-side benchmark: the same workloads on xpm and on experimaestro 2.7.0, in one run.

Run: ``python scripts/bench/compare.py [--repeat 3] [--only W1,W4] [--quick] [--json out.json]``

xpm runs from this interpreter; experimaestro 2.7.0 from its own virtual
environment, made by this script with pip on first use (``--cache``, default
``${XDG_CACHE_HOME:-~/.cache}/xpm-bench``, where its workspaces are kept too).
Each measurement is a fresh process; the tools take turns within each
repetition, so a busy machine slows both. Printed: medians, the ratio
xpm/experimaestro (below 1: xpm is faster), the ratio to the floor of
starting Python processes (W2, W3), and the peak resident memory (max RSS) of
the measured process.

* W1 plan 1,000 and 10,000 distinct jobs in GENERATE_ONLY mode; floor: as many job folders, each with one
  file of params.json's size written atomically (temporary file, rename), in plain Python;
* W2 run 200 trivial jobs, two at a time; floor: 200 ``python -c pass``, two at a time;
* W3 a dependency chain of 50 jobs, run to the end; floor: 50 ``python -c pass`` one after the other;
* W4 ``jobs list``, with and without a filter, and ``experiments list``, over 10,000 and 100,000 jobs
  (the floor of ``experiments list``: Python importing click and msgspec);
* W5 submit again 10,000 jobs that are done;
* W6 identifiers of a nested configuration (depth 3, 10 parameters);
* W7 ``jobs clean --perform`` of 1,000 finished jobs;
* W8 start-up: importing what an experiment file imports, and ``experimaestro --help``.

The workloads are in compare_workload.py (one script, either interpreter), the
tasks in compare_tasks.py, the workspaces of W4 and W7 in compare_workspaces.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import compare_workspaces  # noqa: E402

EXPERIMAESTRO_VERSION = "2.7.0"
TOOLS = ("xpm", "experimaestro")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")
#: a line of ``jobs list`` that names a job: STATE then task-id/identifier (xpm shortens it to 12 characters)
JOB_LINE = re.compile(r"\S/[0-9a-f]{12}")
#: the line of ``experiments list`` for the benchmark's experiment: ``bench [host] (done/total jobs)``
EXPERIMENT_LINE = re.compile(r"^bench .*\((\d+)/(\d+) jobs\)")
#: the filter of W4, understood alike by both tools. experimaestro 2.7.0 needs
#: --experiment for tags, matches no job with the documented upper-case
#: ``@state = "DONE"`` (it compares with "done"), nor with ``in [...]``.
FILTER = '@state = "done" and model = "bm25"'
#: runs the measured commands, for their peak RSS (see Bench.measure)
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


@dataclass
class Sizes:
    """How many jobs (identifiers) each workload handles."""

    plan: tuple[int, ...] = (1_000, 10_000)
    run: int = 200
    chain: int = 50
    listing: tuple[int, ...] = (10_000, 100_000)
    resubmit: int = 10_000
    identifiers: int = 20_000
    clean: int = 1_000

    @staticmethod
    def quick() -> Sizes:
        return Sizes(plan=(200,), run=20, chain=5, listing=(1_000,), resubmit=500, identifiers=2_000, clean=100)


@dataclass
class Sample:
    """One measurement: seconds (of the workload, or of the whole command) and peak RSS in MB."""

    seconds: float
    rss_mb: float


def plan_floor(n: int, size: int) -> float:
    """W1's floor: the least the layout asks of planning ``n`` jobs, in plain Python: ``n`` job folders,
    each with one file of ``params.json``'s size written atomically (a temporary file, then a rename)."""
    payload = b"x" * size
    with tempfile.TemporaryDirectory() as root:
        tasks = Path(root) / "jobs" / "bench.trivial"
        tasks.mkdir(parents=True)
        start = time.perf_counter()
        for i in range(n):
            folder = tasks / f"{i:064x}"
            folder.mkdir()
            temporary = folder / ".params.json.tmp"
            with open(temporary, "wb") as out:
                out.write(payload)
            os.rename(temporary, folder / "params.json")
        return time.perf_counter() - start


@dataclass
class Row:
    """A line of the table: one measure of a workload, on both tools."""

    workload: str
    what: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    #: tool -> why it has no figure (the tool failed, or cannot do it)
    missing: dict[str, str] = field(default_factory=dict)
    floor: list[float] = field(default_factory=list)
    #: for the rates (W6): how many items the seconds are for
    items: int | None = None

    def median(self, tool: str) -> float | None:
        samples = self.samples.get(tool)
        return statistics.median(s.seconds for s in samples) if samples and tool not in self.missing else None

    def rss(self, tool: str) -> float | None:
        samples = self.samples.get(tool)
        return max(s.rss_mb for s in samples) if samples and tool not in self.missing else None

    def ratio(self) -> float | None:
        x, e = self.median("xpm"), self.median("experimaestro")
        return x / e if x is not None and e else None

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "what": self.what, "items": self.items,
            "median_s": {t: self.median(t) for t in TOOLS}, "peak_rss_mb": {t: self.rss(t) for t in TOOLS},
            "ratio_xpm_over_experimaestro": self.ratio(),
            "floor_median_s": statistics.median(self.floor) if self.floor else None,
            "missing": self.missing,
            "samples": {t: [[s.seconds, s.rss_mb] for s in ss] for t, ss in self.samples.items()},
            "floor_samples": self.floor,
        }


class MeasureError(Exception):
    """A measured command failed, or did not do the expected work."""


class Bench:
    """The two interpreters, the measuring of commands, and the rows measured so far."""

    def __init__(self, cache: Path, experimaestro_python: Path, repeat: int, verbose: bool):
        self.cache = cache
        self.repeat = repeat
        self.verbose = verbose
        self.python = {"xpm": Path(sys.executable), "experimaestro": experimaestro_python}
        self.rows: list[Row] = []
        #: the size of a params.json of W1 (its floor writes files of that size)
        self.params_size = 0
        self.logs = Path(tempfile.mkdtemp(prefix="xpm-compare-logs-"))

    def cli(self, tool: str) -> list[str]:
        """The ``experimaestro`` command of a tool (xpm installs one too), else ``python -m``."""
        script = self.python[tool].parent / "experimaestro"
        return [str(script)] if script.exists() else [str(self.python[tool]), "-m", tool]

    def measure(self, command: list[str]) -> tuple[Sample, str]:
        """Runs a command; its wall time, its peak RSS (itself and the children it waited for), its output.

        The peak RSS that wait4 gives for a direct child of this process counts
        this process's memory too (Linux keeps the high-water mark of the memory
        replaced by exec), so the command runs under GNU time, a small process,
        whose own wait4 then measures the command alone.
        """
        log = self.logs / f"{time.monotonic_ns()}.log"
        rss_file = log.with_suffix(".rss")
        wrapped = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *command] if GNU_TIME else command
        with open(log, "w+b") as out:
            start = time.perf_counter()
            proc = subprocess.Popen(wrapped, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            output = out.read().decode(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(output.splitlines()[-15:])
            raise MeasureError(f"{' '.join(command)} exited with {proc.returncode} (log {log}):\n{tail}")
        # GNU time's last line is the figure (a line before it tells of a failure).
        max_rss_kb = int(rss_file.read_text().split()[-1]) if GNU_TIME else usage.ru_maxrss
        return Sample(seconds, max_rss_kb / 1024), output

    def workload(self, tool: str, name: str, n: int | None = None, workdir: Path | None = None) -> Sample:
        """One run of compare_workload.py; the seconds are those it measured around the workload."""
        result = self.logs / "result.json"
        command = [str(self.python[tool]), str(HERE / "compare_workload.py"), "--tool", tool, "--result", str(result)]
        if workdir is not None:
            command += ["--workdir", str(workdir)]
        command.append(name)
        if n is not None:
            command.append(str(n))
        sample, _ = self.measure(command)
        measured = json.loads(result.read_text())
        if n is not None and measured["count"] != n:
            raise MeasureError(f"{tool} {name}: {measured['count']} done instead of {n}")
        return Sample(measured["seconds"], sample.rss_mb)

    def row(self, workload: str, what: str, **kwargs: Any) -> Row:
        row = Row(workload, what, **kwargs)
        self.rows.append(row)
        return row

    def each(self, row: Row, tool: str, action: Callable[[], Sample]) -> None:
        """Adds one sample of ``tool`` to the row; a failure marks the tool n/a for the row."""
        if tool in row.missing:
            return
        try:
            sample = action()
        except MeasureError as e:
            row.missing[tool] = f"failed: {str(e).splitlines()[0]}"
            print(f"  {row.workload} {row.what} on {tool}: {e}", file=sys.stderr)
            return
        row.samples.setdefault(tool, []).append(sample)
        if self.verbose:
            print(f"  {row.workload} {row.what} {tool}: {sample.seconds:.3f} s, {sample.rss_mb:.0f} MB",
                  file=sys.stderr)

    def floor(self, count: int, parallel: int) -> float:
        """Seconds to start and end ``count`` processes ``python -c pass``, ``parallel`` at a time."""
        command = [sys.executable, "-c", "pass"]
        start = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda _: subprocess.run(command, check=True), range(count)))
        return time.perf_counter() - start

    # The workloads

    def w1_plan(self, sizes: Sizes) -> None:
        rows = {n: self.row("W1", f"plan {n:,} jobs (GENERATE_ONLY)") for n in sizes.plan}
        for _ in range(self.repeat):
            for n, row in rows.items():
                for tool in TOOLS:
                    os.sync()  # each sample starts with nothing left to write back from the one before
                    with tempfile.TemporaryDirectory() as root:
                        self.each(row, tool, lambda: self.workload(tool, "plan", n, Path(root)))
                        if tool == "xpm":
                            found = next(Path(root).glob("jobs/*/*/params.json"), None)
                            self.params_size = found.stat().st_size if found is not None else 0
                if self.params_size:
                    os.sync()
                    row.floor.append(plan_floor(n, self.params_size))

    def w2_run(self, sizes: Sizes) -> None:
        row = self.row("W2", f"run {sizes.run} trivial jobs, 2 at a time")
        for _ in range(self.repeat):
            row.floor.append(self.floor(sizes.run, 2))
            for tool in TOOLS:
                self.each(row, tool, lambda: self.ran(tool, "run", sizes.run))

    def w3_chain(self, sizes: Sizes) -> None:
        row = self.row("W3", f"chain of {sizes.chain} dependent jobs")
        for _ in range(self.repeat):
            row.floor.append(self.floor(sizes.chain, 1))
            for tool in TOOLS:
                self.each(row, tool, lambda: self.ran(tool, "chain", sizes.chain))

    def ran(self, tool: str, name: str, n: int) -> Sample:
        """A workload whose jobs run; checks that n jobs ended done."""
        with tempfile.TemporaryDirectory() as root:
            sample = self.workload(tool, name, n, Path(root))
            done = done_jobs(tool, Path(root))
            if done != n:
                raise MeasureError(f"{tool} {name}: {done} jobs done out of {n}")
            return sample

    def w4_list(self, sizes: Sizes) -> None:
        for n in sizes.listing:
            workspaces = {tool: self.listing_workspace(tool, n) for tool in TOOLS}
            commands = {
                f"jobs list, {n:,} jobs": (["jobs", "list"], n),
                f"jobs list --experiment bench --filter, {n:,} jobs": (
                    ["jobs", "list", "--experiment", "bench", "--filter", FILTER], expected_filtered(n)),
                f"experiments list, {n:,} jobs": (["experiments", "list"], n),
            }
            rows = {what: self.row("W4", what) for what in commands}
            for what, (args, expected) in commands.items():
                # Once before timing, for xpm: its first listing after many state
                # changes folds the index log into a snapshot that later listings
                # read; experimaestro keeps nothing between commands. (Every timed
                # listing is checked: a timing of an empty listing is worthless.)
                self.each(rows[what], "xpm", lambda: self.listed("xpm", workspaces["xpm"], args, expected))
                rows[what].samples.pop("xpm", None)
            # The floor of experiments list: starting Python and importing the two libraries
            # any command line on them loads (click parses, msgspec reads the records).
            libraries = [str(self.python["xpm"]), "-c", "import click, msgspec"]
            for _ in range(self.repeat):
                for what, (args, expected) in commands.items():
                    for tool in TOOLS:
                        self.each(rows[what], tool, lambda: self.listed(tool, workspaces[tool], args, expected))
                rows[f"experiments list, {n:,} jobs"].floor.append(self.measure(libraries)[0].seconds)
            shutil.rmtree(workspaces["xpm"])

    def listing_workspace(self, tool: str, n: int) -> Path:
        """experimaestro's is cached (its version is fixed); xpm's is built anew (a second), in its current format."""
        if tool == "experimaestro":
            start = time.perf_counter()
            path = compare_workspaces.cached(self.cache, "index", tool, EXPERIMAESTRO_VERSION, n)
            print(f"  experimaestro workspace of {n:,} jobs: {path} ({time.perf_counter() - start:.1f} s)",
                  file=sys.stderr)
            return path
        root = Path(tempfile.mkdtemp(prefix="xpm-compare-"))
        compare_workspaces.build("index", tool, str(root), n)
        return root

    def listed(self, tool: str, workspace: Path, args: list[str], expected: int) -> Sample:
        """A listing command, checked to show the expected number of jobs."""
        # The workspace options before the subcommand: experimaestro takes them only there.
        command = [*self.cli(tool), args[0], "--workdir", str(workspace), *args[1:]]
        sample, output = self.measure(command)
        if args[0] == "experiments":
            match = next(filter(None, map(EXPERIMENT_LINE.match, output.splitlines())), None)
            found = int(match.group(2)) if match else 0
        else:
            found = sum(1 for line in output.splitlines() if JOB_LINE.search(line))
        if found != expected:
            raise MeasureError(f"{tool} {' '.join(args)}: {found} jobs instead of {expected}")
        return sample

    def w5_resubmit(self, sizes: Sizes) -> None:
        n = sizes.resubmit
        row = self.row("W5", f"submit again {n:,} done jobs")
        roots = {}
        for tool in TOOLS:
            # Once (not timed): the jobs planned in GENERATE_ONLY mode, then marked
            # done as the tool's job process would; each repetition submits them again.
            roots[tool] = Path(tempfile.mkdtemp(prefix="xpm-compare-"))
            try:
                self.workload(tool, "plan", n, roots[tool])
                self.workload(tool, "mark-done", None, roots[tool])
            except MeasureError as e:
                row.missing[tool] = f"setup failed: {str(e).splitlines()[0]}"
        for _ in range(self.repeat):
            for tool in TOOLS:
                self.each(row, tool, lambda: self.resubmitted(tool, roots[tool], n))
        for root in roots.values():
            shutil.rmtree(root)

    def resubmitted(self, tool: str, root: Path, n: int) -> Sample:
        sample = self.workload(tool, "resubmit", n, root)
        logs = started_jobs(root)
        if logs:
            raise MeasureError(f"{tool}: {logs} jobs ran again")
        return sample

    def w6_identifiers(self, sizes: Sizes) -> None:
        row = self.row("W6", f"{sizes.identifiers:,} identifiers (depth 3, 10 parameters)", items=sizes.identifiers)
        for _ in range(self.repeat):
            for tool in TOOLS:
                self.each(row, tool, lambda: self.workload(tool, "identifiers", sizes.identifiers))

    def w7_clean(self, sizes: Sizes) -> None:
        m = sizes.clean
        row = self.row("W7", f"jobs clean --perform, {m:,} finished jobs")
        for _ in range(self.repeat):
            for tool in TOOLS:
                self.each(row, tool, lambda: self.cleaned(tool, m))

    def cleaned(self, tool: str, m: int) -> Sample:
        with tempfile.TemporaryDirectory() as root:
            compare_workspaces.build("finished", tool, root, m)
            folders = Path(root, "jobs", "bench.done")
            assert len(list(folders.iterdir())) == m
            sample, _ = self.measure([*self.cli(tool), "jobs", "--workdir", root, "clean", "--filter",
                                      '@state = "done"', "--perform"])
            left = len(list(folders.iterdir())) if folders.exists() else 0
            if left:
                raise MeasureError(f"{tool}: {left} of {m} job folders left")
            return sample

    def w8_startup(self, sizes: Sizes) -> None:
        rows = {
            "import": self.row("W8", "from <package> import Config, Param, Task, on top of python -c pass"),
            "help": self.row("W8", "experimaestro --help"),
            "floor": self.row("W8", "python -c pass (the floor, each interpreter)"),
        }
        floors: dict[str, list[Sample]] = {tool: [] for tool in TOOLS}
        for _ in range(self.repeat):
            for tool in TOOLS:
                python = str(self.python[tool])
                self.each(rows["floor"], tool, lambda: self.measure([python, "-c", "pass"])[0])
                floors[tool].append(rows["floor"].samples[tool][-1])
                # What an experiment file imports (import xpm alone loads its names on first use)
                names = f"from {tool} import Config, Param, Task"
                self.each(rows["import"], tool, lambda: self.measure([python, "-c", names])[0])
                self.each(rows["help"], tool, lambda: self.measure([*self.cli(tool), "--help"])[0])
        for tool in TOOLS:
            if not floors[tool] or tool not in rows["import"].samples:
                continue
            # The import alone: each sample less the median floor of its interpreter.
            base = statistics.median(s.seconds for s in floors[tool])
            rows["import"].samples[tool] = [Sample(s.seconds - base, s.rss_mb) for s in rows["import"].samples[tool]]


def done_jobs(tool: str, root: Path) -> int:
    """How many jobs of the workspace ended done, from the files each tool's job process leaves."""
    if tool == "experimaestro":
        return sum(1 for _ in root.glob("jobs/*/*/*.done"))
    return sum(1 for p in root.glob("jobs/*/*/.xpm/state.json") if json.loads(p.read_bytes())["state"] == "done")


def started_jobs(root: Path) -> int:
    """How many job folders have a log: a job that ran (or was started) has one, with either tool."""
    return sum(1 for p in root.glob("jobs/*/*/*") if p.suffix in (".err", ".out"))


def expected_filtered(n: int) -> int:
    """How many of the n jobs of the W4 workspaces the filter selects (done and model bm25)."""
    models, states = compare_workspaces.MODELS, compare_workspaces.STATES
    return sum(1 for i in range(n) if states[i % len(states)] == "done" and models[i % len(models)] == "bm25")


def experimaestro_python(cache: Path) -> Path:
    """experimaestro's interpreter: a virtual environment of the cache, made with pip on first use."""
    venv = cache / f"experimaestro-{EXPERIMAESTRO_VERSION}"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('experimaestro'))"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True).stdout.strip()
        if found == EXPERIMAESTRO_VERSION:
            return python
    print(f"installing experimaestro {EXPERIMAESTRO_VERSION} into {venv}", file=sys.stderr)
    # The same base interpreter as xpm's, so that both start the same Python.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"experimaestro=={EXPERIMAESTRO_VERSION}"],
                   check=True)
    found = subprocess.run(check, capture_output=True, text=True, check=True).stdout.strip()
    if found != EXPERIMAESTRO_VERSION:
        raise SystemExit(f"{venv} has experimaestro {found}, not {EXPERIMAESTRO_VERSION}")
    return python


def compile_packages(experimaestro: Path) -> None:
    """Writes the bytecode of both packages, as installing them does.

    pip compiles an installed package; a checkout installed in editable mode gets its
    .pyc files on first import, unless PYTHONDONTWRITEBYTECODE is set. Without them
    every start-up of xpm would compile its changed modules again (milliseconds of W4).
    """
    import xpm

    where = [str(Path(xpm.__file__).parent)]
    found = subprocess.run([str(experimaestro), "-c", "import experimaestro, os; print(os.path.dirname("
                            "experimaestro.__file__))"], capture_output=True, text=True)
    if found.returncode == 0:
        where.append(found.stdout.strip())
    for python, folder in zip((sys.executable, str(experimaestro)), where):
        subprocess.run([python, "-m", "compileall", "-q", folder], check=True, stdout=subprocess.DEVNULL)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                            if line.startswith("Model name")), "")
    except OSError:
        pass
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    info["load_average"] = os.getloadavg()
    import xpm

    info["xpm"] = xpm.__version__
    # The figures are those of the tree as it is, which may differ from its commit.
    git = ["git", "-C", str(HERE)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "--", "../../xpm"], capture_output=True, text=True).stdout
    info["xpm_commit"] = commit + (" with uncommitted changes under xpm/" if changed.strip() else "")
    info["experimaestro"] = EXPERIMAESTRO_VERSION
    return info


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (printed, and pasted into docs/performance.md)."""
    lines = ["| | workload | xpm | experimaestro 2.7.0 | xpm/experimaestro | floor | xpm/floor | exp./floor "
             "| peak RSS xpm | peak RSS exp. |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        x, e, floor = row.median("xpm"), row.median("experimaestro"), None
        cells = [_fmt_s(x), _fmt_s(e)]
        if row.items:
            cells = [f"{row.items / v:,.0f}/s" if v else "n/a" for v in (x, e)]
        for tool in TOOLS:
            if tool in row.missing:
                cells[TOOLS.index(tool)] = f"n/a: {row.missing[tool]}"
        ratio = row.ratio()
        if ratio is None:
            ratio_cell = "n/a"
        else:
            ratio_cell = f"{ratio:.3f} ({1 / ratio:.1f}x faster)" if ratio < 1 else f"{ratio:.2f}"
        if row.floor:
            floor = statistics.median(row.floor)
        per_floor = [f"{v / floor:.2f}" if v is not None and floor else "" for v in (x, e)]
        rss = [f"{v:.0f} MB" if v is not None else "n/a" for v in (row.rss("xpm"), row.rss("experimaestro"))]
        lines.append(f"| {row.workload} | {row.what} | {cells[0]} | {cells[1]} | {ratio_cell} | "
                     f"{_fmt_s(floor) if floor else ''} | {per_floor[0]} | {per_floor[1]} | {rss[0]} | {rss[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, help="measurements of each figure (default 3, 1 with --quick)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4 (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results (and every sample) here")
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser.add_argument("--cache", type=Path, default=cache_home / "xpm-bench",
                        help="experimaestro's virtual environment and workspaces (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every sample as it is measured")
    args = parser.parse_args()
    only = [w.strip().upper() for w in args.only.split(",")] if args.only else list(WORKLOADS)
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = Sizes.quick() if args.quick else Sizes()

    started = time.perf_counter()
    bench = Bench(args.cache, experimaestro_python(args.cache), repeat, args.verbose)
    compile_packages(bench.python["experimaestro"])
    steps = {"W1": bench.w1_plan, "W2": bench.w2_run, "W3": bench.w3_chain, "W4": bench.w4_list,
             "W5": bench.w5_resubmit, "W6": bench.w6_identifiers, "W7": bench.w7_clean, "W8": bench.w8_startup}
    for name in only:
        step_start = time.perf_counter()
        print(f"{name}...", file=sys.stderr)
        steps[name](sizes)
        print(f"{name} took {time.perf_counter() - step_start:.0f} s", file=sys.stderr)
    elapsed = time.perf_counter() - started

    print(table(bench.rows))
    failed = any(row.missing for row in bench.rows)
    print(f"\n{repeat} repetition(s), medians; the run took {elapsed:.0f} s."
          + (f" Logs of the commands: {bench.logs}" if failed else ""))
    if not failed:
        shutil.rmtree(bench.logs)
    if args.json:
        report = {"machine": machine(), "repeat": repeat, "sizes": sizes.__dict__, "seconds": elapsed,
                  "filter": FILTER, "rows": [row.to_json() for row in bench.rows], "table": table(bench.rows)}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
