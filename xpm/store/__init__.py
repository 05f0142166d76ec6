"""The stores of a workspace: job records, refs, append-only logs and the derived index.

Each store is built on a :class:`~xpm.workspace.Workspace` and names its files
through :mod:`xpm.layout`; none of them touches a filesystem directly.
"""
