"""``python -m xpm``: the command line; ``python -m xpm run JOBDIR`` runs a job.

A job process goes straight to :mod:`xpm.runner.job`, without loading the command
line (click): starting a job should cost little more than starting Python.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        from xpm.runner.job import main as run_job

        sys.exit(run_job(sys.argv[2:]))
    from xpm.cli import main

    main()
