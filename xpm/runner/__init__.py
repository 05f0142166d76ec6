"""The job side: the programs that run in a job's process, started by module name only.

* :mod:`xpm.runner.job`: ``python -m xpm run <job folder>`` runs one task;
* :mod:`xpm.runner.forkserver`: ``python -m xpm.runner.forkserver`` forks job
  processes from a warm interpreter (the local launcher's fork server).

Nothing on the submitting side (launchers, scheduler, experiment) imports these
modules: launchers start them as programs, as submitit starts ``submitit.core._submit``.
"""
