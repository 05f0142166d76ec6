"""``python -m xpm.compat``: prints which experimaestro ``import experimaestro`` gives here, in one line."""

from xpm.compat import install_from_environment, status

install_from_environment()
print(status())
