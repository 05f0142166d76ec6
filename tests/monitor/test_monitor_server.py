"""The monitor server (spec/monitor-server.md): its requests answered in process, then as a process behind
:class:`RemoteModel`, which the console view draws as it draws a local model.

The workspaces are written through the store (tests/commands/conftest.py) or by a real experiment; the server
as a process is ``python -m xpm experiments monitor-server`` on pipes (tests/commands/test_ssh_monitor.py runs
it at the end of ssh).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from urwid.testing import press, render_text

from tests.commands.conftest import Maker
from tests.monitor.test_model import fill, ident, short
from tests.run.conftest import script_env, wait_until
from xpm import layout
from xpm.filter import FilterError
from xpm.monitor.remote import RemoteModel, ServerConnection, ServerUnavailable
from xpm.monitor.server import PROTOCOL, MonitorServer
from xpm.monitor.view import MonitorView
from xpm.schema import IndexEntry
from xpm.store.index import JobIndex

SIZE = (100, 24)


@pytest.fixture
def filled(tmp_path: Path) -> Maker:
    return fill(Maker(tmp_path / "ws"))


def ask(server: MonitorServer, op: str, **fields: Any) -> dict[str, Any]:
    """A request and its reply, through JSON both ways (as on the wire)."""
    reply = server.answer(json.loads(json.dumps({"id": 7, "op": op, **fields})))
    assert reply["id"] == 7
    return json.loads(json.dumps(reply))


def error(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["ok"] is False, reply
    return reply["failure"]  # type: ignore[no-any-return]


# --- the requests, in process ------------------------------------------------------------------


def test_hello_says_protocol_version_workspace_and_orders(filled: Maker) -> None:
    server = MonitorServer(filled.ws)
    reply = ask(server, "hello", protocol=PROTOCOL)
    assert reply["ok"] and reply["protocol"] == PROTOCOL and reply["workspace"] == str(filled.root)
    assert reply["sorts"] == {"all": ["updated", "state", "task"],
                              "experiment": ["submitted", "state", "task", "updated"]}
    wrong = error(ask(server, "hello", protocol=PROTOCOL + 1))
    assert wrong["kind"] == "protocol" and wrong["protocol"] == PROTOCOL and "not 2" in wrong["message"]


def test_a_refresh_without_change_is_a_short_reply(filled: Maker) -> None:
    server = MonitorServer(filled.ws)
    view = {"experiment": "xp", "sort": "submitted", "filter": ""}
    first = ask(server, "refresh", since=None, view=view, offset=0, limit=3)
    assert first["changed"] is True and first["indexed"] == 6 and first["problems"] == []
    [xp] = first["experiments"]
    assert xp["experiment_id"] == "xp" and xp["states"] == {"done": 2, "error": 1, "running": 1, "waiting": 1}
    jobs = first["jobs"]
    assert jobs["count"] == 5 and jobs["offset"] == 0 and len(jobs["rows"]) == 3  # the window asked, not all
    assert [row["key"][1][:6] for row in jobs["rows"]] == [f"{i:06x}" for i in (5, 4, 3)]
    again = ask(server, "refresh", since=first["version"], view=view, offset=0, limit=3, shown=[0, 2])
    again = ask(server, "refresh", since=again["version"], view=view, offset=0, limit=3, shown=[0, 2])
    assert again == {"id": 7, "ok": True, "changed": False, "version": again["version"]}
    # A change on disk: the next refresh sends the rows again, with the new state.
    JobIndex(filled.ws).append(IndexEntry(ts=2e9, task_id="m.eval", identifier=f"{ident(4):064x}", state="running"))
    changed = ask(server, "refresh", since=again["version"], view=view, offset=0, limit=3)
    assert changed["changed"] and changed["version"] > again["version"]
    assert changed["jobs"]["rows"][1]["state"] == "running"


def test_jobs_window_order_filter_and_focus(filled: Maker) -> None:
    server = MonitorServer(filled.ws)
    focus = ["m.train", f"{ident(1):064x}"]
    reply = ask(server, "jobs", view={"experiment": "xp", "sort": "state", "filter": '@state != "done"'},
                offset=1, limit=10, focus=focus)
    jobs = reply["jobs"]
    assert jobs["count"] == 3 and jobs["offset"] == 1 and jobs["focus"] is None  # job 1 is done: filtered out
    assert [row["state"] for row in jobs["rows"]] == ["error", "waiting"]  # running first, at offset 0
    every = ask(server, "jobs", view={"experiment": None}, offset=0, limit=100, focus=focus)["jobs"]
    assert every["count"] == 6 and every["rows"][every["focus"]]["key"] == focus
    assert {row["tags"].get("model") for row in every["rows"]} == {"bm25", "splade", None}


def test_bad_requests_get_an_error_and_the_server_goes_on(filled: Maker) -> None:
    server = MonitorServer(filled.ws)
    bad_filter = error(ask(server, "jobs", view={"experiment": "xp", "filter": 'model = "bm25" or'}))
    assert bad_filter["kind"] == "filter" and bad_filter["column"] == 18 and "bad filter" in bad_filter["message"]
    assert bad_filter["found"] == "end of expression" and bad_filter["expected"].startswith("a ")
    assert error(ask(server, "fly"))["kind"] == "unknown-request"
    assert error(ask(server, "detail", key=["m.train", "0" * 64]))["kind"] == "unknown-job"
    assert error(ask(server, "detail", key="m.train/0"))["kind"] == "bad-request"
    assert error(ask(server, "jobs", view={"sort": "size"}))["message"].startswith("view.sort: unknown order")
    assert error(ask(server, "jobs", limit=-1))["kind"] == "bad-request"
    assert error(ask(server, "log", key=["m.train", f"{ident(1):064x}"], stream="stdin"))["kind"] == "bad-request"
    # On the wire: a line that is not JSON, then a good request, answered in order.
    out = io.BytesIO()
    server.serve(io.BytesIO(b'garbage\n[1]\n\n{"id": 3, "op": "hello", "protocol": 1}\n'), out)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["id"], r["ok"]) for r in replies] == [(None, False), (None, False), (3, True)]
    assert replies[0]["failure"]["kind"] == "bad-request"


def test_detail_and_a_log_followed_by_offsets(filled: Maker) -> None:
    server = MonitorServer(filled.ws)
    key = ["m.train", f"{ident(2):064x}"]
    detail = ask(server, "detail", key=key)
    assert detail["detail"]["state"]["state"] == "error" and detail["detail"]["state"]["failure_reason"] == "failed"
    assert detail["row"]["state"] == "error" and detail["state"] == "error"
    assert detail["detail"]["folder"].endswith(layout.job_dir(*key))
    log = filled.root / layout.job_stderr(*key)
    missing = ask(server, "log", key=key, stream="stderr", offset=None)
    assert missing["text"] == "" and missing["offset"] is None
    whole = "line 1\ndéjà vu\n".encode()
    cut = len(b"line 1\nd") + 1
    log.write_bytes(whole[:cut])  # a character cut in two: its end comes later
    first = ask(server, "log", key=key, stream="stderr", offset=None)
    assert first["text"] == "line 1\nd" and first["offset"] == cut
    with log.open("ab") as f:
        f.write(whole[cut:])
    second = ask(server, "log", key=key, stream="stderr", offset=first["offset"])
    assert second["text"] == "éjà vu\n" and not second["skipped"] and second["offset"] == len(whole)
    assert ask(server, "log", key=key, stream="stderr", offset=second["offset"])["text"] == ""
    # A client that starts anew (offset null) gets the tail again, from a line start.
    tail = ask(server, "log", key=key, stream="stderr", offset=None, tail=12)
    assert tail["text"] == "déjà vu\n" and tail["skipped"] is True


def test_kill_through_the_server(filled: Maker) -> None:
    server = MonitorServer(filled.ws)
    waiting = ["m.eval", f"{ident(4):064x}"]
    assert ask(server, "kill", key=waiting, grace=1) == {"id": 7, "ok": True, "result": "cancelled", "detail": ""}
    done = ask(server, "kill", key=["m.train", f"{ident(1):064x}"], grace=1)
    assert done["result"] == "skipped"
    assert error(ask(server, "kill", key=waiting, grace="soon"))["kind"] == "bad-request"


# --- the server as a process, behind RemoteModel ----------------------------------------------------


def server_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "xpm", "experiments", "monitor-server", "--workdir", str(root)]


@pytest.fixture
def remote(filled: Maker) -> Iterator[RemoteModel]:
    connection = ServerConnection(server_command(filled.root), "the test server")
    model = RemoteModel(connection, f"ssh://host{filled.root}", connection.hello(60))
    yield model
    model.close()


def test_the_console_view_draws_a_remote_model(remote: RemoteModel, filled: Maker) -> None:
    remote.refresh()  # as the application does before it draws
    view = MonitorView(remote)  # type: ignore[arg-type]
    text = "\n".join(render_text(view, SIZE, focus=True))
    assert "All jobs (6 in the workspace)" in text and "2/5 done  WAITING 1  RUNNING 1  ERROR 1" in text
    wide = "\n".join(render_text(view, (400, 24), focus=True))
    assert f"ssh://host{filled.root}  (server: xpm " in wide  # the header says where, and through what
    press(view, SIZE, "enter")
    text = "\n".join(render_text(view, SIZE, focus=True))
    assert "Jobs of xp (run 20250101_000000)" in text and "5 job(s)  sort: submitted" in text
    assert short(5, "m.eval") in text and "model=splade" in text
    press(view, SIZE, "/", *'@state = "error"', "enter")
    text = "\n".join(render_text(view, SIZE, focus=True))
    assert "1 job(s)" in text and short(2) in text and short(1) not in text
    press(view, SIZE, "enter")  # the job's detail: its state record and parameters, asked of the server
    text = "\n".join(render_text(view, SIZE, focus=True))
    assert "ERROR (failed)" in text and f"ssh://host{filled.root}/jobs/m.train" in text
    wait_until(lambda: remote.refresh() is False, what="a refresh without change")
    view.update()  # the detail is asked again after a change
    before = remote.connection.requests
    assert remote.refresh() is False and remote.connection.requests == before + 1  # one round trip
    view.update()  # the row and the detail: from what the model keeps; the log: one request
    assert remote.connection.requests == before + 2


def test_filter_errors_come_back_with_their_column(remote: RemoteModel) -> None:
    remote.select("xp")
    with pytest.raises(FilterError) as raised:
        remote.set_filter('model = "bm25" or')
    assert raised.value.column == 18
    remote.set_filter('model = "bm25"')
    assert remote.job_count() == 3 and remote.filter_text == 'model = "bm25"'
    assert {remote.job_row(i).tags["model"] for i in range(3)} == {"bm25"}


def test_a_server_that_ends_or_does_not_answer_is_a_problem_line(remote: RemoteModel, filled: Maker) -> None:
    assert remote.refresh() is True and remote.problems == []
    remote.connection.process.kill()
    remote.connection.process.wait()
    assert remote.refresh() is True  # the problem shows
    assert any("the test server ended" in p for p in remote.problems)
    assert remote.detail(("m.train", f"{ident(1):064x}")).problems  # no crash, the problem instead
    # Given a way to start it again, the model does so at the next refresh (a dropped connection).
    starts: list[ServerConnection] = []

    def restart() -> ServerConnection:
        starts.append(ServerConnection(server_command(filled.root), "the test server"))
        starts[-1].hello(60)
        return starts[-1]

    model = RemoteModel(remote.connection, "ssh://h/ws", {"sorts": {"all": ["updated"], "experiment": ["state"]}},
                        restart=restart)
    assert model.refresh() is True and len(starts) == 1 and model.problems == []
    assert model.indexed_count() == 6
    model.close()


JSONRPC = ('import sys\nfor line in sys.stdin:\n    print(\'{"jsonrpc": "2.0", "id": 1, "error": '
           '{"code": -32600, "message": "Invalid Request"}}\', flush=True)')


@pytest.mark.parametrize("program, reason, message", [
    # Reads every request and never answers: a clear timeout.
    ("import sys; sys.stdin.read()", "no-answer", "the peer did not answer 'hello' within 0.5 s"),
    # Another protocol (JSON-RPC): a protocol error, not a hang.
    (JSONRPC, "protocol", "the peer does not speak spec/monitor-server.md"),
    # Says nothing and ends.
    ("import sys; sys.exit(3)", "ended", "the peer ended: exit status 3"),
])
def test_a_peer_that_is_not_a_monitor_server(program: str, reason: str, message: str) -> None:
    peer = ServerConnection([sys.executable, "-c", program], "the peer")
    try:
        with pytest.raises(ServerUnavailable, match=message) as raised:
            peer.hello(0.5 if reason == "no-answer" else 60)
        assert raised.value.reason == reason
    finally:
        peer.close()


def test_server_on_a_real_experiment_stdout_carries_only_replies(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(root)!r}, "real"):
            Record.C(key=tag("a"), log={str(tmp_path / 'log')!r}).submit()
            Record.C(key=tag("b"), log={str(tmp_path / 'log')!r}).submit()
    """))
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=script_env(), check=True, capture_output=True,
                   timeout=120)
    requests = b"".join(json.dumps(r).encode() + b"\n" for r in [
        {"id": 1, "op": "hello", "protocol": PROTOCOL},
        {"id": 2, "op": "refresh", "view": {"experiment": "real"}, "offset": 0, "limit": 10},
        {"id": 3, "op": "nonsense"},
    ])
    done = subprocess.run(server_command(root), input=requests, capture_output=True, timeout=120, env=script_env())
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in replies] == [1, 2, 3]
    rows = replies[1]["jobs"]["rows"]
    assert sorted(r["tags"]["key"] for r in rows) == ["a", "b"] and {r["state"] for r in rows} == {"done"}
    model = RemoteModel(ServerConnection(server_command(root), "real"), "ssh://h/ws", replies[0])
    try:
        model.refresh()
        model.select("real")
        key = model.job_key(0)
        follower = model.log(key, "stdout")
        wait_until(lambda: "record" in follower.read(), what="the job's output")
    finally:
        model.close()
