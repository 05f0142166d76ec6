"""``python -m xpm``: the command line; ``python -m xpm run JOBDIR`` runs a job.

A job process goes straight to :mod:`xpm.runner.job`, without loading the command
line (click): starting a job should cost little more than starting Python.
"""

import os
import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        if os.environ.get("XPM_EXPERIMAESTRO") == "1":
            # The drop-in (docs/compatibility.md), before the task's module imports experimaestro.
            from xpm.compat import install

            install()
        from xpm.runner.job import main as run_job

        sys.exit(run_job(sys.argv[2:]))
    from xpm.cli import main

    main()
