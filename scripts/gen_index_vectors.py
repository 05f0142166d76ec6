"""Writes spec/vectors/index.json: job-index logs and the fold a reader must make of them.

The expected folds are written by hand below (not computed by xpm's reader), so
the vectors check the reader against the spec. Run: ``python scripts/gen_index_vectors.py``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
A, B = "a" * 64, "b" * 64


def line(event: dict) -> str:
    body = json.dumps(event, separators=(",", ":"))
    return '["%08x",%s]\n' % (zlib.crc32(body.encode()), body)


def entry(ts: float, identifier: str, state: str, tags: dict | None = None, reason: str | None = None) -> str:
    event = {"kind": "index", "ts": ts, "task_id": "t.train", "identifier": identifier, "state": state}
    if reason is not None:
        event["failure_reason"] = reason
    event["tags"] = tags or {}
    return line(event)


def removed(ts: float, identifier: str) -> str:
    return line({"kind": "removed", "ts": ts, "task_id": "t.train", "identifier": identifier})


def job(identifier: str, state: str, tags: dict, ts: float, reason: str | None = None) -> dict:
    return {"task_id": "t.train", "identifier": identifier, "state": state, "failure_reason": reason,
            "tags": tags, "ts": ts}


CASES = [
    {
        "name": "last_state_wins",
        "description": "The state is the one of the job's last entry.",
        "log": [entry(1, A, "waiting", {"lr": 0.1}), entry(2, A, "running"), entry(3, A, "done")],
        "jobs": [job(A, "done", {"lr": 0.1}, 3)],
    },
    {
        "name": "tags_merge_in_order",
        "description": "Tags of later entries win; an entry without tags keeps the tags known so far.",
        "log": [entry(1, A, "waiting", {"lr": 0.1, "m": "x"}), entry(2, A, "waiting", {"lr": 0.2}),
                entry(3, A, "running", {})],
        "jobs": [job(A, "running", {"lr": 0.2, "m": "x"}, 3)],
    },
    {
        "name": "failure_reason",
        "description": "The failure reason comes with the last entry (and goes with it).",
        "log": [entry(1, A, "error", reason="failed"), entry(2, B, "error", reason="cancelled"),
                entry(3, A, "waiting")],
        "jobs": [job(A, "waiting", {}, 3), job(B, "error", {}, 2, "cancelled")],
    },
    {
        "name": "removed_forgets",
        "description": "A removed entry forgets the job; a later entry brings it back without its old tags.",
        "log": [entry(1, A, "done", {"lr": 0.1}), entry(2, B, "done"), removed(3, A),
                entry(4, A, "waiting", {"m": "y"})],
        "jobs": [job(A, "waiting", {"m": "y"}, 4), job(B, "done", {}, 2)],
    },
    {
        "name": "damaged_lines_skipped",
        "description": "A line with a wrong checksum, a line that is not a log line and an unknown kind are "
                       "skipped; a torn last line (no newline) is not read and the offset stops before it.",
        "log": [entry(1, A, "done"),
                entry(2, A, "error", reason="failed").replace('"error"', '"ERROR"'),
                "not a log line\n",
                line({"kind": "future-kind", "ts": 3}),
                entry(4, B, "running"),
                entry(5, B, "done")[:30]],
        "jobs": [job(A, "done", {}, 1), job(B, "running", {}, 4)],
        "problems": 3,
    },
    {
        "name": "torn_then_complete",
        "description": "A torn write followed by a complete line on the same physical line: the complete "
                       "event at its end is kept.",
        "log": [entry(1, A, "running")[:25] + entry(2, A, "done")],
        "jobs": [job(A, "done", {}, 2)],
        "problems": 1,
    },
]


def main() -> None:
    for case in CASES:
        data = "".join(case["log"]).encode()
        case["offset"] = data.rfind(b"\n") + 1
        case.setdefault("problems", 0)
        case["jobs"] = sorted(case["jobs"], key=lambda j: (j["task_id"], j["identifier"]))
    out = {
        "description": "Job index logs (spec/workspace.md, 'The derived job index'): `log` is the file's "
                       "content as lines (concatenate them), `jobs` the fold sorted by task id and "
                       "identifier, `offset` where reading resumes, `problems` the damaged lines reported.",
        "cases": CASES,
    }
    path = ROOT / "spec" / "vectors" / "index.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path} ({len(CASES)} cases)")


if __name__ == "__main__":
    main()
