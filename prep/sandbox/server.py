"""Running the sandbox on uvicorn: in the foreground (`prep sandbox`) or in a background thread.

`run_in_thread()` starts it on a free port of 127.0.0.1 and returns a `RunningSandbox`, a `Sandbox`
handle that also stops it. `Sandbox` alone talks to any running sandbox over HTTP (state, faults,
clock, reset), so tests and scripts drive a sandbox in another process the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import limits
from .app import SandboxApp
from .config import DEMO_KEY, SandboxConfig

__all__ = ["RunningSandbox", "Sandbox", "Server", "bind", "run_in_thread", "serve"]


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol, sharing each connection's transport with the app (scope state)
    so that fault injection can cut a connection for real, mid-request or mid-response."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, "prep.transport": transport}


class Server(uvicorn.Server):
    """uvicorn's server, leaving no connection open when it stops.

    uvicorn's graceful shutdown asks each connection to close and, past
    `timeout_graceful_shutdown`, cancels the requests still running; a connection that has not
    closed by then (a response the client stopped reading, a request cut short by the cancel)
    keeps its transport and socket after the event loop is gone. The garbage collector finds them
    later, in whatever code runs then, as a ResourceWarning. Such connections are aborted here,
    while the loop still runs their `connection_lost`.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        left = list(self.server_state.connections)
        for connection in left:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        for _ in range(3 if left else 0):
            await asyncio.sleep(0)  # connection_lost runs from the loop's next turns


# uvicorn's own logging, with the access log moved from stdout to stderr.
_STDERR_LOGGING = {**uvicorn.config.LOGGING_CONFIG, "handlers": {
    name: {**handler, "stream": "ext://sys.stderr"}
    for name, handler in uvicorn.config.LOGGING_CONFIG["handlers"].items()}}


def _uvicorn_config(app: SandboxApp, *, log_level: str, access_log: bool,
                    log_config: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, http=_Protocol, ws="none", lifespan="off", log_level=log_level,
        access_log=access_log, log_config=log_config, timeout_keep_alive=5,
        timeout_graceful_shutdown=2,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one). OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Terminated(BaseException):
    """SIGTERM arrived while no server was listening for it (see `serve`)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def serve(config: SandboxConfig, sock: socket.socket, *, verbose: bool = False,
          on_ready: Callable[[SandboxApp], None] | None = None) -> None:
    """Serve on `sock` in the foreground until Ctrl-C or SIGTERM; either way the sandbox's
    temporary folder is removed before this returns (or raises KeyboardInterrupt for Ctrl-C).

    uvicorn catches both signals while it serves, shuts down, then raises the signal again. For
    SIGINT that is a KeyboardInterrupt, which runs the cleanup below; SIGTERM's default action
    would end the process on the spot and leave every uploaded file behind (`kill` is how scripts
    stop a server). So SIGTERM gets a handler of its own for as long as this runs, and a SIGTERM
    is a clean stop, like Ctrl-C.
    """
    app = SandboxApp(config)
    host, port = sock.getsockname()[:2]
    app.set_address(host, port)
    server = Server(_uvicorn_config(
        app, log_level="info" if verbose else "warning", access_log=verbose,
        log_config=_STDERR_LOGGING,  # access lines too: stdout carries only the ready line
    ))
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    try:
        if on_ready is not None:
            on_ready(app)
        server.run(sockets=[sock])
    except _Terminated:
        pass
    finally:
        if main:
            # A second SIGTERM during the cleanup must not cut it short.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        app.store.close()
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class Sandbox:
    """A handle on a running sandbox: its URLs and key, and its control endpoints.

    `state()` returns GET /_sandbox/state; `fail_next(kind, ...)` plans a fault (see
    `prep.sandbox.faults`); `advance_clock(s)` moves its clock; `configure(**switches)` changes
    switches such as `honour_idempotency`; `reset()` forgets everything.
    """

    def __init__(self, url: str, *, key: str = DEMO_KEY, files_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.files_url = (files_url or url).rstrip("/")
        self._key = key

    @property
    def key(self) -> str:
        """The API key the sandbox accepts (a demo key, not a secret)."""
        return self._key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    def env(self) -> dict[str, str]:
        """EVOLINK_* settings that point prep at this sandbox."""
        return {"EVOLINK_BASE_URL": self.url, "EVOLINK_FILES_URL": self.files_url,
                "EVOLINK_API_KEY": self.key}

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        with httpx.Client(timeout=30, trust_env=False) as client:
            answer = client.request(method, f"{self.url}{path}", json=body)
        if answer.status_code >= 400:
            raise ValueError(f"sandbox {path}: {answer.json()['error']['message']}")
        return answer.json()

    def state(self) -> dict[str, Any]:
        """uploads, tasks, requests, auth_header_requests, faults, clock, config, keys."""
        result: dict[str, Any] = self._control("GET", "/_sandbox/state")
        return result

    def fail_next(self, kind: str, *, endpoint: str | None = None, key: str | None = None,
                  times: int | None = 1, retry_after_s: int = 1, delay_s: float = 2.0,
                  error_code: str | None = None) -> None:
        """Plan a fault for the next `times` requests to `endpoint` (any when None); a
        `fail_task` fault's task fails with `error_code` (see prep.sandbox.faults)."""
        body: dict[str, Any] = {"kind": kind, "endpoint": endpoint, "key": key, "times": times,
                                "retry_after_s": retry_after_s, "delay_s": delay_s}
        if error_code is not None:
            body["error_code"] = error_code
        self._control("POST", "/_sandbox/faults", body)

    def clear_faults(self) -> None:
        """Drop every planned fault."""
        self._control("DELETE", "/_sandbox/faults")

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock forward (expiry and task progress follow it)."""
        self._control("POST", "/_sandbox/clock", {"advance_s": seconds})

    def configure(self, **switches: Any) -> dict[str, Any]:
        """Change switches until the next reset: speed, honour_idempotency, allow_local_callbacks,
        accept_foreign_urls, max_upload_bytes, max_files, callback_timeout_s, hosts, ..."""
        result: dict[str, Any] = self._control("POST", "/_sandbox/config", switches)
        return result

    def add_key(self, key: str, *, credits: float | None = None,
                models: tuple[str, ...] = limits.SERVED_MODELS, max_files: int | None = None,
                user_group: str = "default", limit: float | None = None) -> None:
        """Accept another key, with its account's balance in credits (None: unlimited), its own
        spending limit in credits (None: none) and its models."""
        body: dict[str, Any] = {"key": key, "credits": credits, "models": list(models),
                                "user_group": user_group, "limit": limit}
        if max_files is not None:
            body["max_files"] = max_files
        self._control("POST", "/_sandbox/keys", body)

    def reset(self) -> None:
        """Forget every file, task, fault, key and switch change; the clock returns to now."""
        self._control("POST", "/_sandbox/reset")

    def openapi(self) -> dict[str, Any]:
        """The sandbox's OpenAPI document."""
        result: dict[str, Any] = self._control("GET", "/openapi.json")
        return result


class RunningSandbox(Sandbox):
    """A sandbox served by uvicorn in a background thread of this process; `stop()` ends it."""

    def __init__(self, app: SandboxApp, server: uvicorn.Server, thread: threading.Thread,
                 url: str, key: str) -> None:
        super().__init__(url, key=key)
        self.app = app
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        """Stop serving and remove the sandbox's files."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.app.store.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_in_thread(server: uvicorn.Server, sock: socket.socket, *, name: str, what: str,
                    ready_timeout_s: float = 15.0) -> threading.Thread:
    """Run a uvicorn server on `sock` in a daemon thread; returns once it serves, or raises
    RuntimeError saying why `what` did not start. Used by the sandbox and by `prep studio`."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # reported to the caller below
            errors.append(err)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout_s
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"{what} did not start: {errors[0] if errors else 'stopped'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{what} did not start in time")
        time.sleep(0.01)
    return thread


def run_in_thread(config: SandboxConfig | None = None, *, host: str = "127.0.0.1",
                  port: int = 0, ready_timeout_s: float = 15.0) -> RunningSandbox:
    """Start a sandbox in a daemon thread on host:port (0: a free port); returns once it serves."""
    config = config or SandboxConfig()
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    app = SandboxApp(config)
    app.set_address(bound_host, bound_port)
    server = Server(_uvicorn_config(app, log_level="warning", access_log=False,
                                            log_config=None))
    thread = start_in_thread(server, sock, name=f"prep-sandbox-{bound_port}", what="the sandbox",
                             ready_timeout_s=ready_timeout_s)
    return RunningSandbox(app, server, thread, app.public_base, config.key)
