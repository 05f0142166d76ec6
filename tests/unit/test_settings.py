"""Settings file (settings.yaml) loading, validation messages and workspace choice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xpm.errors import XpmError
from xpm.settings import (
    HistorySettings,
    Settings,
    SettingsError,
    WorkspaceLocation,
    WorkspaceSettings,
    config_dir,
    load_settings,
    parse_location,
    resolve_workspace,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fake home and no XPM_CONFIG_DIR, so that the real user settings never leak in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XPM_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error(folder: Path, text: str) -> SettingsError:
    write(folder, text)
    with pytest.raises(SettingsError) as info:
        load_settings(folder)
    return info.value


# --- where the file is ---------------------------------------------------------------


def test_default_config_dir_is_in_home(isolated):
    assert config_dir() == isolated / ".config" / "experimaestro"


def test_xdg_config_home_comes_before_the_home_folder(isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "experimaestro"
    # The XDG specification: an empty or relative value is ignored.
    for ignored in ("", "relative/config"):
        monkeypatch.setenv("XDG_CONFIG_HOME", ignored)
        assert config_dir() == isolated / ".config" / "experimaestro"


def test_xpm_config_dir_wins_over_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XPM_CONFIG_DIR", str(tmp_path / "from-env"))
    assert config_dir() == tmp_path / "from-env"


def test_env_var_overrides_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XPM_CONFIG_DIR", str(tmp_path / "from-env"))
    assert config_dir() == tmp_path / "from-env"


def test_explicit_overrides_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("XPM_CONFIG_DIR", str(tmp_path / "from-env"))
    assert config_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert config_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"


def test_empty_env_var_is_ignored(isolated, monkeypatch):
    monkeypatch.setenv("XPM_CONFIG_DIR", "")
    assert config_dir() == isolated / ".config" / "experimaestro"


def test_config_dir_expands_tilde_and_is_absolute(isolated, tmp_path):
    assert config_dir("~/conf") == isolated / "conf"
    assert config_dir("relative") == tmp_path / "relative"


def test_settings_are_read_from_env_var_dir(tmp_path, monkeypatch):
    write(tmp_path / "envdir", "workspaces: [{id: fromenv, path: /data/env}]\n")
    write(tmp_path / "explicit", "workspaces: [{id: explicit, path: /data/explicit}]\n")
    monkeypatch.setenv("XPM_CONFIG_DIR", str(tmp_path / "envdir"))
    assert [ws.id for ws in load_settings().workspaces] == ["fromenv"]
    assert [ws.id for ws in load_settings(tmp_path / "explicit").workspaces] == ["explicit"]


def test_settings_are_read_from_default_dir(isolated):
    path = write(isolated / ".config" / "experimaestro", "env: {A: b}\n")
    settings = load_settings()
    assert settings.env == {"A": "b"}
    assert settings.path == path


# --- defaults ------------------------------------------------------------------------


def test_missing_file_gives_empty_settings(tmp_path):
    settings = load_settings(tmp_path / "nowhere")
    assert settings == Settings(env={}, history=HistorySettings(None, None), workspaces=[], path=None)
    assert not settings.history.prunes  # by default, every run is kept


def test_empty_file_gives_empty_settings(tmp_path):
    path = write(tmp_path, "")
    assert load_settings(tmp_path) == Settings(path=path)


def test_workspace_defaults(tmp_path):
    write(tmp_path, "workspaces:\n  - id: main\n    path: /data/xp\n")
    (ws,) = load_settings(tmp_path).workspaces
    assert ws == WorkspaceSettings(
        id="main",
        location=WorkspaceLocation(kind="local", path="/data/xp"),
        env={},
        triggers=[],
        max_retries=3,
        history=HistorySettings(max_done=None, max_failed=None),
    )


def test_full_file(tmp_path):
    write(
        tmp_path,
        """
env: {JAVA_HOME: /opt/java, THREADS: 4}
history: {max_done: 10, max_failed: 0}
server: {port: 12345, token: abc}
carbon: {enabled: false}
workspaces:
  - id: main
    path: /data/main
    env: {CUDA_VISIBLE_DEVICES: "0"}
    triggers: ["nlp-*", "exact"]
    max_retries: 0
    history: {max_done: 2}
  - id: cluster
    path: ssh://bob@cluster.example:2222/scratch/bob/xp
""",
    )
    settings = load_settings(tmp_path)
    assert settings.env == {"JAVA_HOME": "/opt/java", "THREADS": "4"}
    assert settings.history == HistorySettings(max_done=10, max_failed=0)
    main, cluster = settings.workspaces
    assert main.env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert main.triggers == ["nlp-*", "exact"]
    assert main.max_retries == 0
    assert main.history == HistorySettings(max_done=2, max_failed=0)  # max_failed from the global history
    assert cluster.location == WorkspaceLocation("ssh", "/scratch/bob/xp", "cluster.example", "bob", 2222)
    assert str(cluster.location) == "ssh://bob@cluster.example:2222/scratch/bob/xp"


def test_workspace_history_refines_global_history(tmp_path):
    write(
        tmp_path,
        "history: {max_done: 10, max_failed: 4}\n"
        "workspaces:\n  - {id: a, path: /a, history: {max_done: 2}}\n  - {id: b, path: /b}\n",
    )
    a, b = load_settings(tmp_path).workspaces
    assert a.history == HistorySettings(max_done=2, max_failed=4)
    assert b.history == HistorySettings(max_done=10, max_failed=4)
    assert resolve_workspace(config_dir=tmp_path, workdir="/c").history == HistorySettings(10, 4)


def test_env_for_workspace_overrides_global_env(tmp_path):
    write(tmp_path, "env: {A: g, B: g}\nworkspaces: [{id: w, path: /w, env: {B: w, C: w}}]\n")
    settings = load_settings(tmp_path)
    assert settings.env_for(settings.workspaces[0]) == {"A": "g", "B": "w", "C": "w"}
    assert settings.env == {"A": "g", "B": "g"}


# --- paths ---------------------------------------------------------------------------


def test_tilde_is_expanded(tmp_path, isolated):
    write(tmp_path, "workspaces: [{id: a, path: ~/experiments}]\n")
    (ws,) = load_settings(tmp_path).workspaces
    assert ws.location.path == str(isolated / "experiments")
    assert ws.location.kind == "local"


def test_relative_path_is_relative_to_settings_file(tmp_path, monkeypatch):
    write(tmp_path / "conf", "workspaces: [{id: a, path: ../xp/./main}]\n")
    monkeypatch.chdir("/")  # the current directory must not matter
    (ws,) = load_settings(tmp_path / "conf").workspaces
    assert ws.location.path == str(tmp_path / "xp" / "main")


def test_parse_location_local():
    assert parse_location("/a/b/../c/") == WorkspaceLocation(kind="local", path="/a/c")
    assert parse_location("x/y", base=Path("/base")) == WorkspaceLocation(kind="local", path="/base/x/y")
    assert str(parse_location("/a/b")) == "/a/b"


def test_parse_location_relative_defaults_to_cwd(tmp_path):
    assert parse_location("sub").path == str(tmp_path / "sub")


@pytest.mark.parametrize(
    "text, user, host, port, path, canonical",
    [
        ("ssh://alice@gpu.lab:2222/data/xp", "alice", "gpu.lab", 2222, "/data/xp", "ssh://alice@gpu.lab:2222/data/xp"),
        # No port: ~/.ssh/config decides (else 22), as for the ssh command.
        ("ssh://gpu.lab/data/xp", None, "gpu.lab", None, "/data/xp", "ssh://gpu.lab/data/xp"),
        ("ssh://alice@gpu.lab/data/xp/", "alice", "gpu.lab", None, "/data/xp", "ssh://alice@gpu.lab/data/xp"),
        ("ssh://GPU.lab:23/a/../b", None, "gpu.lab", 23, "/b", "ssh://gpu.lab:23/b"),
        ("ssh://[::1]:24/p", None, "::1", 24, "/p", "ssh://[::1]:24/p"),
    ],
)
def test_parse_location_ssh(text, user, host, port, path, canonical):
    location = parse_location(text)
    assert location == WorkspaceLocation(kind="ssh", path=path, host=host, user=user, port=port)
    assert str(location) == canonical
    assert parse_location(canonical) == location
    assert not location.is_local


@pytest.mark.parametrize(
    "text, message",
    [
        ("ftp://x", "'ftp://x' is neither a local path nor ssh://user@host:port/path"),
        ("ssh://host", "'ssh://host' has no path; expected ssh://user@host:port/absolute/path"),
        ("ssh:///data", "'ssh:///data' has no host; expected ssh://user@host:port/path"),
        ("ssh://h:port/x", "'ssh://h:port/x' has an invalid port; expected ssh://user@host:port/path"),
        ("ssh://u:pw@h/x", "'ssh://u:pw@h/x' contains a password; use an SSH key or agent instead"),
        ("", "'' is empty; expected a local path or ssh://user@host:port/path"),
    ],
)
def test_parse_location_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_location(text)
    assert str(info.value) == message


# --- ${env:VAR} ----------------------------------------------------------------------


def test_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("XP_ROOT", "/mnt/big")
    monkeypatch.setenv("XP_USER", "carol")
    write(
        tmp_path,
        """
env: {DATA: "${env:XP_ROOT}/data", BOTH: "${env:XP_USER}@${env:XP_ROOT}"}
workspaces:
  - id: ws-${env:XP_USER}
    path: ${env:XP_ROOT}/xp
    triggers: ["${env:XP_USER}-*"]
  - id: remote
    path: ssh://${env:XP_USER}@host/${env:XP_ROOT}
""",
    )
    settings = load_settings(tmp_path)
    assert settings.env == {"DATA": "/mnt/big/data", "BOTH": "carol@/mnt/big"}
    local, remote = settings.workspaces
    assert local.id == "ws-carol"
    assert local.location.path == "/mnt/big/xp"
    assert local.triggers == ["carol-*"]
    assert str(remote.location) == "ssh://carol@host/mnt/big"


def test_omegaconf_env_spelling_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("XP_ROOT", "/mnt/big")
    write(tmp_path, "env: {DATA: '${oc.env:XP_ROOT}'}\n")
    assert load_settings(tmp_path).env == {"DATA": "/mnt/big"}


def test_unset_env_variable_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("XP_NOT_SET", raising=False)
    err = error(tmp_path, "workspaces:\n  - id: a\n    path: ${env:XP_NOT_SET}/xp\n")
    assert str(err) == (
        f"{tmp_path}/settings.yaml: workspaces[0].path: "
        "the environment variable XP_NOT_SET is not set (used as ${env:XP_NOT_SET})"
    )


def test_ignored_sections_are_not_interpolated(tmp_path, monkeypatch):
    monkeypatch.delenv("XP_NOT_SET", raising=False)
    write(tmp_path, "server: {token: '${env:XP_NOT_SET}'}\n")
    assert load_settings(tmp_path).workspaces == []


# --- error messages ------------------------------------------------------------------


def test_bad_integer(tmp_path):
    err = error(
        tmp_path,
        "workspaces:\n  - id: a\n    path: /a\n  - id: b\n    path: /b\n    max_retries: three\n",
    )
    file = f"{tmp_path}/settings.yaml"
    assert str(err) == f"{file}: workspaces[1].max_retries: expected an integer, got 'three'"
    assert isinstance(err, XpmError)
    assert (err.path, err.key, err.problem) == (file, "workspaces[1].max_retries", "expected an integer, got 'three'")


def test_yaml_syntax_error(tmp_path):
    err = error(tmp_path, "env:\n  A: b\nworkspaces: x: y\n")
    assert (
        str(err) == f"{tmp_path}/settings.yaml: line 3, column 14: invalid YAML (mapping values are not allowed here)"
    )
    assert err.key == ""


def test_yaml_syntax_error_line_3_column_5(tmp_path):
    err = error(tmp_path, "env: {}\nhistory: {}\nc: d: e\n")
    assert str(err) == f"{tmp_path}/settings.yaml: line 3, column 5: invalid YAML (mapping values are not allowed here)"


def test_yaml_forbidden_character(tmp_path):
    err = error(tmp_path, 'env: {}\nhistory: {max_done: "\x07"}\n')
    assert str(err) == f"{tmp_path}/settings.yaml: line 2, column 22: invalid YAML (forbidden character #x0007)"


def test_missing_required_key(tmp_path):
    err = error(tmp_path, "workspaces:\n  - id: main\n")
    assert str(err) == f"{tmp_path}/settings.yaml: workspaces[0]: missing required key 'path'"
    err = error(tmp_path, "workspaces:\n  - path: /x\n")
    assert str(err) == f"{tmp_path}/settings.yaml: workspaces[0]: missing required key 'id'"


def test_duplicate_ids(tmp_path):
    err = error(tmp_path, "workspaces:\n  - {id: main, path: /a}\n  - {id: main, path: /b}\n")
    assert str(err) == f"{tmp_path}/settings.yaml: workspaces: two workspaces have the id 'main'"


def test_bad_location(tmp_path):
    err = error(tmp_path, "workspaces:\n  - {id: a, path: 'ftp://x'}\n")
    assert str(err) == (
        f"{tmp_path}/settings.yaml: workspaces[0].path: 'ftp://x' is neither a local path nor ssh://user@host:port/path"
    )


def test_unknown_workspace_key(tmp_path):
    err = error(tmp_path, "workspaces:\n  - {id: a, path: /a, colour: blue}\n")
    assert str(err) == (
        f"{tmp_path}/settings.yaml: workspaces[0].colour: "
        "unknown key (known keys: env, history, id, known_hosts, launcher, max_retries, path, triggers)"
    )


def test_unknown_top_level_key(tmp_path):
    err = error(tmp_path, "workspace: []\n")
    assert str(err) == (
        f"{tmp_path}/settings.yaml: workspace: unknown key (known keys: carbon, env, history, max_jobs, notify, server, workspaces)"
    )


def test_unknown_history_key(tmp_path):
    err = error(tmp_path, "history: {max_done: 1, max_fail: 2}\n")
    assert str(err) == f"{tmp_path}/settings.yaml: history.max_fail: unknown key (known keys: max_done, max_failed)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n- b\n", "expected a mapping at the top level, got ['a', 'b']"),
        ("workspaces: {id: a}\n", "workspaces: expected a list of workspaces, got {'id': 'a'}"),
        ("workspaces: [main]\n", "workspaces[0]: expected a mapping, got 'main'"),
        ("workspaces: [{id: 1, path: /a}]\n", "workspaces[0].id: expected a string, got 1"),
        ("workspaces: [{id: '', path: /a}]\n", "workspaces[0].id: expected a non-empty string, got ''"),
        (
            "workspaces: [{id: a, path: /a, triggers: 'x*'}]\n",
            "workspaces[0].triggers: expected a list of patterns, got 'x*'",
        ),
        ("workspaces: [{id: a, path: /a, triggers: [x, 3]}]\n", "workspaces[0].triggers[1]: expected a string, got 3"),
        (
            "workspaces: [{id: a, path: /a, max_retries: true}]\n",
            "workspaces[0].max_retries: expected an integer, got True",
        ),
        (
            "workspaces: [{id: a, path: /a, max_retries: 2.5}]\n",
            "workspaces[0].max_retries: expected an integer, got 2.5",
        ),
        (
            "workspaces: [{id: a, path: /a, max_retries: -1}]\n",
            "workspaces[0].max_retries: expected a non-negative integer, got -1",
        ),
        (
            "workspaces: [{id: a, path: /a, env: [A]}]\n",
            "workspaces[0].env: expected a mapping of variable names to values, got ['A']",
        ),
        ("env: {A: yes}\n", "env.A: expected a string, got True"),
        ("env: {A: null}\n", "env.A: expected a string, got None"),
        ("history: 3\n", "history: expected a mapping, got 3"),
        ("history: {max_failed: many}\n", "history.max_failed: expected an integer, got 'many'"),
        (
            "workspaces: [{id: a, path: 'ssh://host'}]\n",
            "workspaces[0].path: 'ssh://host' has no path; expected ssh://user@host:port/absolute/path",
        ),
        ("env: {A: '${env:}'}\n", "env.A: ${env:} names no environment variable"),
    ],
)
def test_error_messages(tmp_path, text, message):
    assert str(error(tmp_path, text)) == f"{tmp_path}/settings.yaml: {message}"


def test_error_is_one_line(tmp_path):
    err = error(tmp_path, "a: [\n")
    assert "\n" not in str(err)
    assert str(err).startswith(f"{tmp_path}/settings.yaml: line ")


def test_unreadable_file(tmp_path):
    (tmp_path / "settings.yaml").mkdir()
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path)
    assert str(info.value) == f"{tmp_path}/settings.yaml: cannot read the file (Is a directory)"


def test_nulls_mean_defaults(tmp_path):
    write(tmp_path, "env:\nhistory:\nworkspaces:\n  - id: a\n    path: /a\n    triggers:\n    max_retries:\n")
    settings = load_settings(tmp_path)
    assert settings.env == {}
    assert settings.workspaces[0].triggers == []
    assert settings.workspaces[0].max_retries == 3


# --- choosing a workspace ------------------------------------------------------------

SETTINGS = """
workspaces:
  - id: remote
    path: ssh://me@cluster:2200/scratch/xp
    triggers: ["big-*"]
  - id: main
    path: {root}/main
  - id: nlp
    path: {root}/nlp
    triggers: ["nlp-*", "bert?"]
    env: {{NLP: "1"}}
"""


@pytest.fixture
def conf(tmp_path) -> Path:
    write(tmp_path / "conf", SETTINGS.format(root=tmp_path))
    return tmp_path / "conf"


def resolve(conf: Path, **kwargs) -> WorkspaceSettings:
    return resolve_workspace(config_dir=conf, **kwargs)


def test_first_local_workspace_is_the_default(conf):
    assert resolve(conf).id == "main"
    assert resolve(conf, experiment_id="nothing-matches").id == "main"


def test_triggers(conf):
    assert resolve(conf, experiment_id="nlp-sentiment").id == "nlp"
    assert resolve(conf, experiment_id="bert2").id == "nlp"
    assert resolve(conf, experiment_id="bert22").id == "main"
    # a trigger may choose an SSH workspace, which is never a default otherwise
    assert resolve(conf, experiment_id="big-run").id == "remote"
    # matching is case-sensitive
    assert resolve(conf, experiment_id="NLP-x").id == "main"


def test_first_matching_trigger_wins(tmp_path):
    write(tmp_path, "workspaces:\n  - {id: a, path: /a, triggers: ['x*']}\n  - {id: b, path: /b, triggers: ['xy*']}\n")
    assert resolve(tmp_path, experiment_id="xyz").id == "a"


def test_workspace_option_wins(conf):
    assert resolve(conf, workspace="nlp", experiment_id="big-run").id == "nlp"
    assert resolve(conf, workspace="remote").location.kind == "ssh"


def test_unknown_workspace_id(conf):
    with pytest.raises(SettingsError) as info:
        resolve(conf, workspace="gpu")
    assert str(info.value) == (
        f"{conf}/settings.yaml: workspaces: no workspace has the id 'gpu' "
        "(given by --workspace; known ids: remote, main, nlp)"
    )
    assert info.value.key == "workspaces"


def test_unknown_workspace_id_without_file(tmp_path):
    with pytest.raises(SettingsError) as info:
        resolve(tmp_path / "none", workspace="gpu")
    assert str(info.value) == (
        f"{tmp_path}/none/settings.yaml: workspaces: no workspace has the id 'gpu' "
        "(given by --workspace; no workspace is declared; the file does not exist)"
    )


def test_workdir_matching_a_workspace_gives_its_settings(conf, tmp_path):
    ws = resolve(conf, workdir=str(tmp_path / "nlp" / ".." / "nlp"), experiment_id="big-run")
    assert ws.id == "nlp"
    assert ws.env == {"NLP": "1"}
    assert resolve(conf, workdir="ssh://me@cluster:2200/scratch/xp/").id == "remote"


def test_relative_workdir_is_relative_to_cwd(conf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "conf")
    assert resolve(conf, workdir="../main").id == "main"


def test_workdir_through_a_symlink_matches(conf, tmp_path):
    (tmp_path / "main").mkdir()
    os.symlink(tmp_path / "main", tmp_path / "link")
    assert resolve(conf, workdir=str(tmp_path / "link")).id == "main"


def test_adhoc_workdir(conf, tmp_path, isolated):
    ws = resolve(conf, workdir=str(tmp_path / "elsewhere"), experiment_id="nlp-x")
    assert ws == WorkspaceSettings(
        id=str(tmp_path / "elsewhere"), location=WorkspaceLocation("local", str(tmp_path / "elsewhere"))
    )
    assert ws.max_retries == 3 and ws.env == {} and ws.triggers == []
    assert resolve(conf, workdir="~/xp").id == str(isolated / "xp")
    # another user on the same host is another place
    assert resolve(conf, workdir="ssh://cluster:2200/scratch/xp").id == "ssh://cluster:2200/scratch/xp"


def test_adhoc_workdir_without_settings(tmp_path):
    ws = resolve(tmp_path / "none", workdir="ssh://h/x")
    assert ws.id == "ssh://h/x"
    assert ws.location.kind == "ssh"


def test_bad_workdir(conf):
    with pytest.raises(SettingsError) as info:
        resolve(conf, workdir="ftp://x")
    assert str(info.value) == "--workdir: 'ftp://x' is neither a local path nor ssh://user@host:port/path"
    assert info.value.path is None


def test_workspace_and_workdir_at_the_same_place(conf, tmp_path):
    assert resolve(conf, workspace="main", workdir=str(tmp_path / "main")).id == "main"
    assert resolve(conf, workspace="remote", workdir="ssh://me@cluster:2200/scratch/xp").id == "remote"


def test_workspace_and_workdir_at_different_places(conf, tmp_path):
    with pytest.raises(SettingsError) as info:
        resolve(conf, workspace="main", workdir=str(tmp_path / "nlp"))
    assert str(info.value) == (
        f"--workspace main is {tmp_path}/main but --workdir is {tmp_path}/nlp; "
        "give only one of them, or two that designate the same place"
    )


def test_no_workspace(tmp_path):
    with pytest.raises(SettingsError) as info:
        resolve(tmp_path / "none")
    assert str(info.value) == (
        f"{tmp_path}/none/settings.yaml: no workspace given: use --workdir PATH or --workspace ID, "
        "or declare a workspace with a local path in this file (the file does not exist)"
    )
    assert info.value.path == f"{tmp_path}/none/settings.yaml"


def test_ssh_workspace_is_never_the_default(tmp_path):
    write(tmp_path, "workspaces: [{id: r, path: 'ssh://h/x', triggers: ['r-*']}]\n")
    with pytest.raises(SettingsError) as info:
        resolve(tmp_path, experiment_id="other")
    assert str(info.value) == (
        f"{tmp_path}/settings.yaml: no workspace given: use --workdir PATH or --workspace ID, "
        "or declare a workspace with a local path in this file"
    )
    assert resolve(tmp_path, experiment_id="r-1").id == "r"


def test_settings_argument_is_used_instead_of_the_file(conf):
    settings = Settings(workspaces=[WorkspaceSettings(id="mem", location=parse_location("/mem"))])
    assert resolve(conf, settings=settings).id == "mem"


def test_invalid_settings_file_fails_resolution(tmp_path):
    write(tmp_path, "workspaces: 3\n")
    with pytest.raises(SettingsError) as info:
        resolve(tmp_path, workdir="/x")
    assert info.value.key == "workspaces"


def test_import_xpm_does_not_import_settings():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import sys, xpm; print('xpm.settings' in sys.modules, 'yaml' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]
