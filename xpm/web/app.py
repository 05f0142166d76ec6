"""The routes of the web monitor: the page, its three static files, the JSON API and the event stream.

Routes (every one behind :func:`xpm.web.auth.guard`):

- ``GET /``: the page; ``GET /static/{app.js,style.css}``: its script and style;
- ``GET /api/experiments``: experiments, counts by state, problems;
- ``GET /api/jobs?experiment=&filter=&sort=&reverse=&offset=&limit=``: a page of job rows;
- ``GET /api/compare?...``: the same page's tags and parameters side by side;
- ``GET /api/jobs/{task}/{id}``: a job's detail; ``.../log?stream=&offset=``: its log;
- ``POST /api/jobs/{task}/{id}/kill``: kills the job;
- ``GET /api/experiments/{id}/runs``: the runs of an experiment;
- ``GET /api/events``: server-sent events (``changed`` after a refresh that changed something).

Errors are JSON (``{"message": ...}``) with their status; an unexpected one is a 500 with
its one-line message, never a stack trace, and the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from xpm.monitor.files import one_line
from xpm.web import views
from xpm.web.auth import TOKEN_HEADER, guard, refusal
from xpm.web.push import Hub

logger = logging.getLogger("xpm.web")

STATIC = Path(__file__).parent / "static"
#: The files the page needs, by URL name: a fixed table, so no URL can name another file
STATIC_FILES = {"app.js": "application/javascript", "style.css": "text/css"}

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
TOKEN: web.AppKey[str] = web.AppKey("token", str)


def make_app(hub: Hub, token: str, port: Callable[[], int]) -> web.Application:
    """The application over ``hub``; ``port`` gives the port once it is bound (the cookie's name holds it)."""
    app = web.Application(middlewares=[guard(token, port), _errors])
    app[HUB] = hub
    app[TOKEN] = token
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/experiments", _json(lambda hub, request: views.experiments(hub)))
    app.router.add_get("/api/experiments/{experiment}/runs",
                       _json(lambda hub, request: views.runs(hub, request.match_info["experiment"])))
    app.router.add_get("/api/jobs", _json(lambda hub, request: views.jobs(hub, request.query)))
    app.router.add_get("/api/compare", _json(lambda hub, request: views.compare(hub, request.query)))
    app.router.add_get("/api/jobs/{task}/{id}", _json(lambda hub, request: views.job(hub, *_job_id(request))))
    app.router.add_get("/api/jobs/{task}/{id}/log",
                       _json(lambda hub, request: views.log(hub, *_job_id(request), request.query)))
    app.router.add_post("/api/jobs/{task}/{id}/kill", _kill)
    app.router.add_get("/api/events", _events)

    async def started(app: web.Application) -> None:
        await hub.call(hub.refresh)  # the first requests find the workspace read
        hub.start()

    async def stopping(app: web.Application) -> None:
        await hub.stop()

    app.on_startup.append(started)
    app.on_shutdown.append(stopping)
    return app


def _job_id(request: web.Request) -> tuple[str, str]:
    return request.match_info["task"], request.match_info["id"]


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except views.ApiError as exc:
        return web.json_response(exc.body, status=exc.status)
    except web.HTTPException as exc:
        return refusal(exc.status, exc.reason)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # noqa: BLE001 - one request fails, the server goes on
        logger.warning("%s %s: %s", request.method, request.path, exc, exc_info=logger.isEnabledFor(logging.DEBUG))
        return refusal(500, one_line(exc))


def _json(view: Callable[[Hub, web.Request], dict[str, Any]]) -> Callable[[web.Request], Any]:
    """A handler that runs ``view`` in the model's thread and answers its dict as JSON."""

    async def handler(request: web.Request) -> web.Response:
        hub = request.app[HUB]
        body = await hub.call(view, hub, request)
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return handler


async def _index(request: web.Request) -> web.Response:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    # The page's script sends the token in a header for actions (the cookie is HttpOnly).
    page = page.replace("{{TOKEN}}", request.app[TOKEN]).replace("{{TOKEN_HEADER}}", TOKEN_HEADER)
    return web.Response(text=page, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP,
                                 "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})


#: Scripts and styles of this origin only; no frames (clickjacking of the kill button)
_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    kind = STATIC_FILES.get(name)
    if kind is None:
        return refusal(404, f"no file {name!r}")
    return web.Response(body=(STATIC / name).read_bytes(), content_type=kind, headers={"Cache-Control": "no-cache"})


async def _kill(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    key = await hub.call(views.resolve, hub, *_job_id(request))
    # Not in the model's thread: a kill waits for the process to stop (up to its grace period).
    outcome = await asyncio.get_running_loop().run_in_executor(None, partial(hub.model.kill, key))
    return web.json_response({"result": outcome.result, "detail": outcome.detail, "name": f"{key[0]}/{key[1]}"})


async def _events(request: web.Request) -> web.StreamResponse:
    return await request.app[HUB].stream(request)
