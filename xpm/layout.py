"""Every file and folder name xpm reads or writes (mirrored in ``spec/``).

No other module spells an on-disk name: they ask this one.
"""

from __future__ import annotations

#: A task's parameters, in a job folder (see ``spec/params.md``)
PARAMS_FILE = "params.json"
#: What :func:`xpm.save` writes in the folder it is given (same format as params.json)
SAVED_FILE = "xpm.json"
