"""The web monitor's HTTP API, against the workspace of a real experiment (jobs done, failed, running)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.runs import TwoRuns
from tests.run.conftest import script_env, wait_until
from tests.web.conftest import Experiment, eventually, request
from xpm import layout
from xpm.web.auth import TOKEN_HEADER, cookie_name
from xpm.web.serve import PortInUse, WebMonitor, settings_port
from xpm.workspace import LocalWorkspace


def rows(server: WebMonitor, query: str = "experiment=watched") -> list[dict]:
    answer = request(server, f"/api/jobs?{query}")
    assert answer.status == 200, answer.body
    return answer.body["rows"]


def job_named(server: WebMonitor, key: str) -> dict:
    found = [row for row in rows(server, f"experiment=watched&filter=key+%3D+{key}") if row["tags"].get("key") == key]
    assert len(found) == 1
    return found[0]


# --- reading ------------------------------------------------------------------------------------------


def test_the_experiment_is_listed_with_its_run_host_start_and_counts(server: WebMonitor) -> None:
    body = request(server, "/api/experiments").body
    (xp,) = body["experiments"]
    assert xp["id"] == "watched" and xp["status"] == "running" and xp["host"] == socket.gethostname()
    assert xp["run_id"] and abs(xp["started_at"] - time.time()) < 600
    assert xp["total"] == 6 and xp["states"]["running"] >= 2 and xp["states"]["error"] == 1
    assert body["all_jobs"] == 6 and body["problems"] == []


def test_jobs_come_by_pages_in_every_order(server: WebMonitor) -> None:
    body = request(server, "/api/jobs?experiment=watched&limit=4").body
    assert body["count"] == 6 and len(body["rows"]) == 4 and body["sort"] == "submitted"
    assert body["sorts"] == ["submitted", "state", "task", "updated"]
    # Last submitted first (doomed), as the console monitor shows them.
    assert body["rows"][0]["tags"] == {"key": "doomed"}
    rest = request(server, "/api/jobs?experiment=watched&limit=4&offset=4").body["rows"]
    backwards = request(server, "/api/jobs?experiment=watched&limit=6&reverse=1").body["rows"]
    assert [r["name"] for r in backwards] == [r["name"] for r in reversed(body["rows"] + rest)]
    by_task = rows(server, "experiment=watched&sort=task")
    assert [r["task_id"] for r in by_task] == sorted(r["task_id"] for r in by_task)
    by_state = [r["state"] for r in rows(server, "experiment=watched&sort=state")]
    assert by_state[0] == "running" and by_state[-1] == "done"
    # Every job of the workspace, most recent change first.
    assert request(server, "/api/jobs").body["count"] == 6
    assert request(server, "/api/jobs?sort=submitted").status == 400  # (not an order of all jobs)


def test_a_filter_narrows_and_a_bad_one_says_where(server: WebMonitor) -> None:
    narrowed = rows(server, "experiment=watched&filter=@state+%3D+%22error%22")
    assert [r["tags"] for r in narrowed] == [{"key": "bad"}]
    bad = request(server, "/api/jobs?experiment=watched&filter=key+%3D")
    assert bad.status == 400
    assert bad.body["column"] == 6 and "expected a value" in bad.body["message"]
    assert len(rows(server)) == 6  # the server goes on


def test_a_job_shows_its_parameters_dependencies_and_folder(server: WebMonitor, running: Experiment) -> None:
    second = next(r for r in rows(server, "experiment=watched&filter=@name+%3D+%22test.sum%22&sort=task")
                  if request(server, f"/api/jobs/{r['task_id']}/{r['identifier']}").body["dependencies"])
    detail = request(server, f"/api/jobs/test.sum/{second['identifier'][:8]}").body  # a prefix is enough
    assert detail["identifier"] == second["identifier"]
    assert {"name": "value", "value": "2"} in detail["params"]
    (dep,) = detail["dependencies"]
    assert dep["task_id"] == "test.sum" and dep["state"] == "done"
    first = request(server, f"/api/jobs/test.sum/{dep['identifier']}").body
    assert {"name": "value", "value": "1"} in first["params"]
    assert detail["folder"] == str(running.ws / layout.job_dir("test.sum", second["identifier"]))


def test_a_log_is_followed_from_an_offset(server: WebMonitor) -> None:
    quick = job_named(server, "quick")
    base = f"/api/jobs/{quick['task_id']}/{quick['identifier']}/log"
    first = request(server, f"{base}?stream=stdout").body
    assert first["text"] == "record quick\n" and first["problem"] is None
    again = request(server, f"{base}?stream=stdout&offset={first['offset']}").body
    assert again["text"] == "" and again["offset"] == first["offset"]
    bad = job_named(server, "bad")
    err = request(server, f"/api/jobs/{bad['task_id']}/{bad['identifier']}/log").body
    assert "fails on purpose" in err["text"]
    assert request(server, f"{base}?stream=passwd").status == 400


def test_the_runs_of_an_experiment(server: WebMonitor) -> None:
    (run,) = request(server, "/api/experiments/watched/runs").body["runs"]
    assert run["current"] and run["status"] == "running" and run["jobs"] == 6


def test_compare_shows_what_differs_between_the_listed_jobs(server: WebMonitor) -> None:
    body = request(server, "/api/compare?experiment=watched&filter=@name+%3D+%22test.record%22").body
    names = {(c["kind"], c["name"]) for c in body["columns"]}
    assert ("tag", "key") in names and ("param", "key") in names
    assert ("param", "log") not in names and body["hidden"] >= 1  # the same for every job
    everything = request(server, "/api/compare?experiment=watched&filter=@name+%3D+%22test.record%22&all=1").body
    assert ("param", "log") in {(c["kind"], c["name"]) for c in everything["columns"]}


# --- bad input ------------------------------------------------------------------------------------------


def test_unknown_or_malformed_names_get_a_message_and_their_status(server: WebMonitor) -> None:
    assert request(server, "/api/jobs?experiment=nope").status == 404
    assert request(server, "/api/experiments/nope/runs").status == 404
    unknown = request(server, "/api/jobs/test.record/" + "f" * 64)
    assert unknown.status == 404 and "not found" in unknown.body["message"]
    assert request(server, "/api/jobs/..%2F..%2Fetc/passwd").status == 400
    assert request(server, "/api/jobs/test.record/abc").status == 400  # too short a prefix
    assert request(server, "/static/..%2Fserve.py").status == 404
    assert request(server, "/nothing/here").status == 404
    assert request(server, "/api/jobs?limit=100000").status == 400
    assert request(server, "/api/experiments").status == 200  # it goes on serving


def test_a_damaged_index_is_a_problem_line_not_an_error(running: Experiment, tmp_path: Path) -> None:
    copy = tmp_path / "ws"
    shutil.copytree(running.ws, copy, ignore=shutil.ignore_patterns("*.lock"))
    with open(copy / layout.JOB_INDEX, "ab") as index:
        index.write(b'{"garbage": 1}\n')
    monitor = WebMonitor(LocalWorkspace(str(copy)), port=0, interval=0.2).start()
    try:
        body = request(monitor, "/api/experiments").body
        assert any("damaged" in p for p in body["problems"]), body["problems"]
        assert request(monitor, "/api/jobs?experiment=watched").body["count"] == 6
    finally:
        monitor.stop()


# --- security --------------------------------------------------------------------------------------------


def test_every_request_needs_the_token(server: WebMonitor) -> None:
    for path in ("/", "/api/experiments", "/api/jobs", "/static/app.js", "/api/events"):
        assert request(server, path, token=None).status == 401
    stale = request(server, "/api/experiments", token="an-old-token")
    assert stale.status == 403 and "stale" in stale.body["message"]
    # The printed URL sets an HttpOnly, SameSite=Strict cookie and drops the token from the address.
    opened = request(server, "/")
    assert opened.status == 303 and opened.headers["Location"] == "/"
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith(f"{cookie_name(server.port)}={server.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with_cookie = request(server, "/", token=None, headers={"Cookie": f"{cookie_name(server.port)}={server.token}"})
    assert with_cookie.status == 200 and server.token in with_cookie.body  # the page's script sends it on POST
    assert "Content-Security-Policy" in with_cookie.headers


def test_actions_need_the_token_header_and_this_origin(server: WebMonitor) -> None:
    doomed = job_named(server, "doomed")
    kill = f"/api/jobs/{doomed['task_id']}/{doomed['identifier']}/kill"
    cookie = {"Cookie": f"{cookie_name(server.port)}={server.token}"}
    assert request(server, kill, token=None, method="POST", headers=cookie).status == 403
    other = {TOKEN_HEADER: server.token, "Origin": "http://evil.example"}
    refused = request(server, kill, token=None, method="POST", headers=other)
    assert refused.status == 403 and "origin" in refused.body["message"]
    assert request(server, kill, token=None, method="GET", headers=cookie).status == 405
    assert job_named(server, "doomed")["state"] == "running"


def test_it_binds_this_machine_only_and_a_busy_port_is_named(server: WebMonitor) -> None:
    assert server.host == "127.0.0.1"
    with pytest.raises(PortInUse, match=f"port {server.port} of 127.0.0.1 is in use"):
        WebMonitor(server.workspace, port=server.port)


def test_the_port_comes_from_the_settings(tmp_path: Path) -> None:
    assert settings_port(tmp_path) is None
    (tmp_path / "settings.yaml").write_text("server: {port: 8123, token: x}\nworkspaces: []\n")
    assert settings_port(tmp_path) == 8123


# --- live -------------------------------------------------------------------------------------------------


def test_a_push_follows_a_change_and_the_job_turns_done(server: WebMonitor, running: Experiment) -> None:
    url = f"http://127.0.0.1:{server.port}/api/events?token={server.token}"
    with urllib.request.urlopen(url, timeout=30) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.readline() == b"event: hello\n"
        stream.readline(), stream.readline()
        running.go.write_text("go")
        line = stream.readline()
        while line.startswith(b":") or line == b"\n":
            line = stream.readline()
        assert line == b"event: changed\n"
    eventually(lambda: job_named(server, "slow")["state"] == "done", "the slow job done")


def test_kill_stops_a_running_job(server: WebMonitor) -> None:
    doomed = job_named(server, "doomed")
    answer = request(server, f"/api/jobs/{doomed['task_id']}/{doomed['identifier']}/kill", token=None,
                     method="POST", headers={TOKEN_HEADER: server.token, "Origin": f"http://127.0.0.1:{server.port}"})
    assert answer.status == 200 and answer.body["result"] == "killed", answer.body
    eventually(lambda: job_named(server, "doomed")["state"] == "error", "the killed job in error")


# --- commands -------------------------------------------------------------------------------------------------


def test_experiments_monitor_prints_the_url_and_serves(running: Experiment, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "xpm", "experiments", "monitor", "--workdir", str(running.ws), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env(),
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"Web monitor of {running.ws}: open http://127.0.0.1:")
        url = line.split("open ", 1)[1].strip()
        with urllib.request.urlopen(url.replace("/?token", "/api/experiments?token"), timeout=30) as response:
            assert b'"watched"' in response.read()
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "xpm", "experiments", "monitor", "--workdir", str(running.ws), "--port", str(port)],
            capture_output=True, text=True, env=script_env(),
        )
    assert busy.returncode == 2 and "Traceback" not in busy.stderr
    assert f"port {port} of 127.0.0.1 is in use" in busy.stderr


def test_an_experiment_with_a_port_serves_the_monitor_during_its_run(tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = tmp_path / "xp.py"
    script.write_text(textwrap.dedent(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(tmp_path / 'ws')!r}, "served", port=0) as xp:
            Record.C(key=tag("one"), log={str(tmp_path / 'log')!r}, wait_for={str(go)!r}).submit()
    """))
    process = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True,
                               env=script_env(XPM_CONFIG_DIR=str(tmp_path)))
    try:
        line = process.stderr.readline()  # type: ignore[union-attr]
        assert line.startswith("xpm: web monitor of served: open http://127.0.0.1:"), line
        url = line.split("open ", 1)[1].strip().split("#")[0]
        api = url.replace("/?token", "/api/jobs?experiment=served&token")

        def one_job() -> bool:
            try:
                with urllib.request.urlopen(api, timeout=30) as response:
                    return b'"one"' in response.read()
            except urllib.error.HTTPError as error:  # 404 until the run is read (served from its start)
                assert error.code == 404
                return False

        wait_until(one_job, what="the job in the served monitor")
        go.write_text("go")
        assert process.wait(timeout=60) == 0
        with pytest.raises(OSError):  # the server ended with the run
            urllib.request.urlopen(api, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_experiment_with_a_port_serves_the_monitor_during_the_run(tmp_path: Path) -> None:
    go = tmp_path / "go"
    (tmp_path / "experiment.py").write_text(textwrap.dedent(f"""
        from xpm import tag
        from xpm.experiments import ConfigurationBase, ExperimentHelper, configuration
        from tests.run.tasks import Record

        @configuration
        class Configuration(ConfigurationBase):
            pass

        def run(helper: ExperimentHelper, cfg: Configuration):
            Record.C(key=tag("cli"), log={str(tmp_path / 'log')!r}, wait_for={str(go)!r}).submit()
    """))
    (tmp_path / "experiment.yaml").write_text("id: cli-served\nfile: experiment\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "xpm", "run-experiment", "--workdir", str(tmp_path / "ws"), "--port", "0",
         "experiment.yaml"],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env=script_env(XPM_CONFIG_DIR=str(tmp_path)),
    )
    try:
        line = process.stderr.readline()  # type: ignore[union-attr]
        while line and "web monitor" not in line:
            line = process.stderr.readline()  # type: ignore[union-attr]
        assert line.startswith("xpm: web monitor of cli-served: open http://127.0.0.1:"), line
        api = line.split("open ", 1)[1].strip().split("#")[0].replace("/?token", "/api/jobs?token")
        wait_until(lambda: b'"cli"' in urllib.request.urlopen(api, timeout=30).read(), what="the job served")
        go.write_text("go")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- the runs of an experiment ---------------------------------------------------------------------


def test_the_jobs_of_an_older_run(twice_server: WebMonitor, twice: TwoRuns) -> None:
    new, old = request(twice_server, "/api/experiments/twice/runs").body["runs"]
    assert (new["run_id"], new["current"], new["jobs"], new["done"], new["errors"]) == (twice.runs[1], True, 1, 1, 0)
    assert (old["run_id"], old["current"], old["jobs"], old["done"], old["errors"]) == (twice.runs[0], False, 3, 2, 1)
    assert old["status"] == "failed" and old["tags"] == ["baseline"] and new["tags"] == []

    def keys(body: dict[str, Any]) -> list[str]:
        return [row["tags"]["key"] for row in body["rows"]]

    current = request(twice_server, "/api/jobs?experiment=twice").body
    assert keys(current) == ["new"] and current["run"] == twice.runs[1] and current["current_run"]
    older = request(twice_server, f"/api/jobs?experiment=twice&run={twice.runs[0]}").body
    assert keys(older) == ["old-bad", "old-b", "old-a"] and older["run"] == twice.runs[0]
    assert not older["current_run"] and older["count"] == 3
    # A run is named as `experiments show` names it: a tag, ~N...
    tagged = request(twice_server, "/api/jobs?experiment=twice&run=baseline&sort=task").body
    assert tagged["run"] == twice.runs[0] and sorted(keys(tagged)) == ["old-a", "old-b", "old-bad"]
    assert request(twice_server, "/api/jobs?experiment=twice&run=~1").body["run"] == twice.runs[0]
    filtered = request(twice_server, f"/api/jobs?experiment=twice&run={twice.runs[0]}&filter=%40state+%3D+%22error%22")
    assert keys(filtered.body) == ["old-bad"]
    # Without run=, the current run again.
    assert keys(request(twice_server, "/api/jobs?experiment=twice").body) == ["new"]

    assert request(twice_server, "/api/jobs?experiment=twice&run=19990101").status == 404
    assert request(twice_server, "/api/jobs?run=baseline").status == 400
