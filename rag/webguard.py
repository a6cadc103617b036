"""What the chat app adds in front of Gradio's routes; plain ASGI, no Gradio import.

Gradio guards its data routes with the login, but not everything an outsider
can reach: failed logins are answered at once (a password can be guessed at
full speed), `/gradio_api/reset` and `/gradio_api/cancel` need no login, and
`/gradio_api/upload` stores files for anyone. `Guard` closes those:

- a failed login makes the next attempt from the same client wait longer
  (LoginThrottle: 1 s, 2 s, 4 s ... up to 60 s), and attempts from one client
  are taken one at a time, so parallel guesses queue behind the delay;
- reset and cancel answer 401 without the session cookie when a login is set;
- uploads are refused (403) when the app has them off, and otherwise a request
  whose declared size is over the limit is refused (413) before it is read;
  Gradio's own `max_file_size` bounds a body that does not declare its size.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

LOGIN_PATHS = {"/login"}
# Routes Gradio leaves open that act on someone's running events.
LOGIN_REQUIRED = {"/gradio_api/reset", "/gradio_api/cancel", "/openapi.json", "/docs", "/redoc"}
UPLOAD_PATHS = {"/gradio_api/upload", "/gradio_api/process_recording"}


class LoginThrottle:
    """A growing delay per client after failed logins; forgotten after a success.

    delay(n failures) = first * 2**(n-1), at most `cap` seconds. At most
    `max_clients` are remembered (the oldest forgotten first), so a flood of
    addresses cannot fill the memory.
    """

    def __init__(self, first: float = 1.0, cap: float = 60.0, max_clients: int = 10_000, forget_after: float = 3600.0) -> None:
        self.first, self.cap, self.max_clients, self.forget_after = first, cap, max_clients, forget_after
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # client -> (failures, last failure time)
        self._locks: dict[str, asyncio.Lock] = {}

    def failures(self, client: str) -> int:
        n, last = self._failures.get(client, (0, 0.0))
        if n and time.monotonic() - last > self.forget_after:
            self._failures.pop(client, None)
            return 0
        return n

    def delay(self, client: str) -> float:
        n = self.failures(client)
        return 0.0 if n == 0 else min(self.cap, self.first * 2 ** (n - 1))

    def failed(self, client: str) -> None:
        self._failures[client] = (self.failures(client) + 1, time.monotonic())
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            old, _ = self._failures.popitem(last=False)
            self._locks.pop(old, None)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def lock(self, client: str) -> asyncio.Lock:
        if client not in self._locks:
            if len(self._locks) > self.max_clients:
                self._locks.clear()  # only idle locks are lost: a held one is referenced by its waiter
            self._locks[client] = asyncio.Lock()
        return self._locks[client]


@dataclass(frozen=True)
class GuardConfig:
    uploads: bool  # whether this app takes documents from the page
    max_upload_bytes: int  # the largest upload request accepted


class Guard:
    """ASGI middleware for the Gradio app (passed as `app_kwargs={"middleware": [...]}`)."""

    def __init__(self, app, config: GuardConfig, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.config = config
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "").rstrip("/") or "/"
        gradio_app = scope.get("app")
        if path in LOGIN_PATHS and scope.get("method") == "POST":
            return await self._login(scope, receive, send)
        if path in LOGIN_REQUIRED and _login_set(gradio_app) and not _logged_in(gradio_app, scope):
            return await _reply(send, 401, {"error": "Not authenticated: log in first"})
        if path in UPLOAD_PATHS:
            if not self.config.uploads:
                return await _reply(send, 403, {"error": "uploads are off in this app: start it on 127.0.0.1, "
                                                         "with a login, or with --allow-uploads"})
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.config.max_upload_bytes:
                return await _reply(send, 413, {"error": f"the upload is {int(declared):,} bytes; the limit is "
                                                         f"{self.config.max_upload_bytes:,} bytes"})
        return await self.app(scope, receive, send)

    async def _login(self, scope, receive, send) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        async with self.throttle.lock(client):
            wait = self.throttle.delay(client)
            if wait:
                await asyncio.sleep(wait)
            status = 0

            async def watch(message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, watch)
            if status == 200:
                self.throttle.succeeded(client)
            elif 400 <= status < 500:
                self.throttle.failed(client)


def _login_set(gradio_app) -> bool:
    return getattr(gradio_app, "auth", None) is not None or getattr(gradio_app, "auth_dependency", None) is not None


def _logged_in(gradio_app, scope) -> bool:
    tokens = getattr(gradio_app, "tokens", {}) or {}
    cookie_id = getattr(gradio_app, "cookie_id", None)
    raw = _header(scope, b"cookie")
    if not raw or cookie_id is None:
        return False
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return False
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        if name in jar and jar[name].value in tokens:
            return True
    return False


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _reply(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
