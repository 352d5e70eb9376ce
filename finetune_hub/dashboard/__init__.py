"""The web dashboard (`finetune-hub dashboard`): a read-only page over the job store.

`app.py` builds the Starlette app and serves it (uvicorn); `data.py` reads what it shows;
`static/` holds the page, its script and Chart.js (MIT, vendored as a static file).

>>> from finetune_hub.dashboard import serve  # doctest: +SKIP
>>> serve(port=8765)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def serve(*args: Any, **kwargs: Any) -> None:
    """Serve the dashboard on 127.0.0.1 (see `app.serve`)."""
    from finetune_hub.dashboard.app import serve as run

    run(*args, **kwargs)


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The dashboard's ASGI app (see `app.create_app`)."""
    from finetune_hub.dashboard.app import create_app as make

    return make(*args, **kwargs)
