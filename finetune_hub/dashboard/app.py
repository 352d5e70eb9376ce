"""The web dashboard: a read-only page over the job store, served by Starlette on 127.0.0.1.

`finetune-hub dashboard` runs it (uvicorn); `pip install "finetune-hub[team]"` brings both.
The page shows every job across providers (status, age, progress, latest event), a job's loss
chart (Chart.js, shipped in static/), and the deployments still billing with their hourly and
accumulated cost; it reloads its data every few seconds by itself. Only GET routes exist: the
page changes nothing. The store is kept fresh by whoever refreshes jobs (`finetune-hub refresh
--watch`, or `dashboard --poll SECONDS`, which refreshes in a background thread).

>>> app = create_app(JobStore(), refresh_seconds=10)  # doctest: +SKIP
>>> serve(port=8765)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from typing import Any

from finetune_hub.dashboard.data import deployment_rows, job_rows, loss_curve
from finetune_hub.errors import MissingDependencyError
from finetune_hub.store import JobStore

DEFAULT_PORT = 8765


def _starlette() -> Any:
    try:
        import starlette  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            'the dashboard needs Starlette and uvicorn: pip install "finetune-hub[team]"'
        ) from None


def create_app(store: JobStore | None = None, *, refresh_seconds: float = 10.0) -> Any:
    """The dashboard's ASGI app over `store` (default: the user's store)."""
    _starlette()
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    store = store or JobStore()
    static = resources.files("finetune_hub.dashboard").joinpath("static")
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    settings = json.dumps({"refreshSeconds": refresh_seconds, "store": store.location})
    page = page.replace("/*SETTINGS*/{}", settings)

    def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    def jobs(request: Request) -> JSONResponse:
        return JSONResponse({"jobs": job_rows(store)})

    def metrics(request: Request) -> JSONResponse:
        job_id = request.path_params["job_id"]
        if store.get(job_id) is None:
            return JSONResponse({"error": f"no job {job_id}"}, status_code=404)
        return JSONResponse(loss_curve(store, job_id))

    def deployments(request: Request) -> JSONResponse:
        return JSONResponse(deployment_rows(store))

    routes = [
        Route("/", index),
        Route("/api/jobs", jobs),
        Route("/api/jobs/{job_id}/metrics", metrics),
        Route("/api/deployments", deployments),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    return Starlette(routes=routes)


def start_polling(
    store: JobStore, interval: float, stop: threading.Event, **refresh_options: Any
) -> threading.Thread:
    """Refresh every unfinished job every `interval` seconds in a daemon thread until `stop`
    is set (errors are collected per job by `refresh_all`, never raised)."""
    from finetune_hub.jobs.refresh import refresh_all

    def run() -> None:
        while not stop.is_set():
            refresh_all(store=store, **refresh_options)
            stop.wait(interval)

    thread = threading.Thread(target=run, name="finetune-hub-dashboard-poll", daemon=True)
    thread.start()
    return thread


def serve(
    store: JobStore | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    refresh_seconds: float = 10.0,
    poll: float | None = None,
) -> None:
    """Serve the dashboard until interrupted; with `poll`, refresh the jobs that often too.

    >>> serve(JobStore(url="postgresql://fh@db/hub"), port=8765)  # doctest: +SKIP
    """
    _starlette()
    import uvicorn

    store = store or JobStore()
    app = create_app(store, refresh_seconds=refresh_seconds)
    stop = threading.Event()
    if poll:
        start_polling(store, poll, stop)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        stop.set()
