"""A small OpenAI-compatible endpoint for a local model (`POST /v1/chat/completions`, `GET /v1/models`),
so client code written against a cloud works unchanged:

>>> d = model.deploy("serve", confirm_cost=True)  # doctest: +SKIP
>>> openai.OpenAI(base_url=d.info.endpoint, api_key="local").chat.completions.create(
...     model=model.id, messages=[{"role": "user", "content": "hi"}])  # doctest: +SKIP

It runs in a background thread of the current process, answers one request at a time (greedy, no
streaming) and binds to 127.0.0.1 by default. For real serving, merge the adapter
(`model.deploy("merge", ...)`) and use vLLM, llama.cpp or `transformers serve`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from finetune_hub.providers.local.serve import generate

_SERVERS: dict[str, tuple[ThreadingHTTPServer, threading.Thread, str, str]] = {}
_LOCK = threading.Lock()


def start(
    name: str,
    model_id: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    device: str | None = None,
) -> str:
    """Serve `model_id` under `name`; returns the base URL (`http://host:port/v1`). A server of
    that name already running here is kept (its URL is returned)."""
    if name in _SERVERS:
        return _SERVERS[name][2]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": model_id, "object": "model", "owned_by": "local"}],
                    },
                )
            else:
                self._send(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )
                return
            try:
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"
                )
                messages = body["messages"]
                max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
            except (ValueError, KeyError, TypeError) as exc:
                self._send(
                    400,
                    {"error": {"message": f"bad request: {exc}", "type": "invalid_request_error"}},
                )
                return
            try:
                with _LOCK:
                    text = generate(model_id, messages, max_new_tokens=max_tokens, device=device)
            except Exception as exc:  # the client gets the reason, the server keeps serving
                self._send(
                    500,
                    {"error": {"message": f"{type(exc).__name__}: {exc}", "type": "server_error"}},
                )
                return
            self._send(
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model") or model_id,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                },
            )

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(
        target=server.serve_forever, name=f"fh-local-endpoint-{server.server_port}", daemon=True
    )
    thread.start()
    url = f"http://{host}:{server.server_port}/v1"
    _SERVERS[name] = (server, thread, url, model_id)
    return url


def stop(name: str) -> bool:
    """Stop the server `name` started here; False when there is none."""
    found = _SERVERS.pop(name, None)
    if found is None:
        return False
    found[0].shutdown()
    found[0].server_close()
    return True


def running(name: str) -> tuple[str, str] | None:
    """(base URL, model id) of the server `name` running in this process, or None."""
    found = _SERVERS.get(name)
    return (found[2], found[3]) if found else None
