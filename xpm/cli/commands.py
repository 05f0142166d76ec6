"""Registers the commands of the click group (imported by :func:`xpm.cli.main`)."""
