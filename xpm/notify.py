"""The signal at the end of a run: the ``notify`` command of ``settings.yaml``.

An experiment run that ends (done or failed) runs the command once, through the
shell, with what ended in its environment::

    notify: 'notify-send "xpm: $XPM_EXPERIMENT $XPM_STATUS ($XPM_JOBS_DONE/$XPM_JOBS_TOTAL done)"'

Once per run, never per job. A command that fails, cannot start or hangs past
:data:`TIMEOUT` is a warning on stderr: the run's status does not change.
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["notify_run", "TIMEOUT"]

#: Seconds the notification command may take before it is abandoned
TIMEOUT = 60.0


def notify_run(
    command: str,
    *,
    experiment_id: str,
    run_id: str,
    status: str,
    done: int,
    failed: int,
    total: int,
    workspace: str,
    run_dir: str,
) -> bool:
    """Runs ``command`` for a run that ended; whether it succeeded (a failure is said on stderr)."""
    env = {
        **os.environ,
        "XPM_EXPERIMENT": experiment_id,
        "XPM_RUN": run_id,
        "XPM_STATUS": status,
        "XPM_JOBS_DONE": str(done),
        "XPM_JOBS_FAILED": str(failed),
        "XPM_JOBS_TOTAL": str(total),
        "XPM_WORKSPACE": workspace,
        "XPM_RUN_DIR": run_dir,
    }
    try:
        # stdin closed: a command that asks something must not wait for the experiment's terminal.
        result = subprocess.run(command, shell=True, env=env, stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        problem = f"still running after {TIMEOUT:.0f} s (abandoned)"
    except OSError as exc:
        problem = f"could not start ({exc.strerror or exc})"
    else:
        if result.returncode == 0:
            return True
        problem = f"exited with status {result.returncode}"
    print(f"xpm: warning: the notify command of the settings {problem}: {command}", file=sys.stderr, flush=True)
    return False
