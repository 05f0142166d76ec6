"""``python -m xpm``: the command line."""

from xpm.cli import main

if __name__ == "__main__":
    main()
