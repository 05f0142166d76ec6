"""The console monitor: watch and steer the experiments of a workspace from a terminal.

:mod:`xpm.monitor.model` turns workspace files into rows and counts (no urwid, so
it is tested without a terminal); the ``view*`` modules draw them with urwid and
:mod:`xpm.monitor.app` runs the application (``run(workspace)``).
"""
