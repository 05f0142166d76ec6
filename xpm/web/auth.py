"""Who may use the web monitor: whoever holds its secret token, from a page of its own origin.

On a shared login node, other users reach 127.0.0.1 too: every request must carry
the token the command printed. The printed URL has it as ``?token=...``; the first
request sets it in a cookie (``HttpOnly``: scripts cannot read it; ``SameSite=Strict``:
another site's page cannot send it) and the page is reloaded without it, so that the
token does not stay in the address bar or the history. Cookies are shared by every
port of a host, so the cookie's name holds the port.

Requests that change something (POST) need more: the token in the ``X-Xpm-Token``
header (a form of another site cannot set a header) and, when the browser says where
the request comes from (``Origin``), this server's own origin.
"""

from __future__ import annotations

import secrets
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

#: The header that carries the token in requests made by the page's script
TOKEN_HEADER = "X-Xpm-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    """A fresh secret token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def cookie_name(port: int) -> str:
    """The name of the token cookie for the server on ``port`` (cookies ignore ports)."""
    return f"xpm_token_{port}"


def refusal(status: int, message: str) -> web.Response:
    """A JSON error answer: ``{"message": message}``."""
    return web.json_response({"message": message}, status=status)


def _same(given: str | None, token: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def guard(token: str, port: Callable[[], int]) -> Middleware:
    """The middleware that lets through only the requests that carry ``token``.

    Args:
        token: the secret token.
        port: the port the server listens on (known once it is bound: ``--port 0``).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        cookie = cookie_name(port())
        in_query = request.query.get("token")
        given = in_query or request.headers.get(TOKEN_HEADER) or request.cookies.get(cookie)
        if given is None:
            return refusal(401, "this monitor needs its token: open the URL that the monitor command printed")
        if not _same(given, token):
            return refusal(403, "wrong or stale token: open the URL that the monitor command printed last")
        if request.method not in ("GET", "HEAD"):
            if not _same(request.headers.get(TOKEN_HEADER), token):
                return refusal(403, f"actions need the token in the {TOKEN_HEADER} header")
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                return refusal(403, f"actions are refused from another origin ({origin})")
        if in_query is not None and request.method == "GET" and request.path == "/":
            # The cookie carries the token from now on: the address bar loses it.
            response: web.StreamResponse = web.Response(status=303, headers={"Location": "/"})
        else:
            response = await handler(request)
        if in_query is not None:
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
        return response

    return middleware
