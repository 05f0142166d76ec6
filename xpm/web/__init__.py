"""The web monitor: the console monitor's model (:mod:`xpm.monitor.model`) served over HTTP to a browser.

``auth`` checks the secret token, the cookie and the origin of every request; ``push``
refreshes the model and tells the pages that something changed (server-sent events);
``views`` turns what the model knows into JSON; ``app`` maps the routes; ``serve``
starts and stops the server. The page (``static/``) is plain HTML, CSS and JavaScript.

aiohttp is imported by these modules only, and they are imported only by the commands
that serve (``import xpm`` and ``experimaestro --help`` do not pay for it).
"""
