"""Serving the studio on uvicorn: in the foreground (`prep studio`) or in a thread (tests)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

import uvicorn

from prep.sandbox.server import Server, start_in_thread
from prep.ui.studio.app import Studio, create_app

__all__ = ["HOST", "RunningStudio", "bind", "run_in_thread", "serve"]

# The studio can spend money: it listens on the loopback address and nowhere else.
HOST = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: a free one); OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def _server(studio: Studio, *, verbose: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(create_app(studio), ws="none", lifespan="off",
                            log_level="info" if verbose else "warning", access_log=verbose,
                            log_config=None, timeout_keep_alive=5, timeout_graceful_shutdown=1)
    return Server(config)


def serve(studio: Studio, sock: socket.socket, *, verbose: bool = False,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in the foreground until Ctrl-C (uvicorn stops cleanly, then KeyboardInterrupt)."""
    host, port = sock.getsockname()[:2]
    server = _server(studio, verbose=verbose)
    try:
        if on_ready is not None:
            on_ready(studio.url(host, port))
        server.run(sockets=[sock])
    finally:
        studio.close()


class RunningStudio:
    """A studio served by uvicorn in a background thread; `stop()` ends it."""

    def __init__(self, studio: Studio, server: uvicorn.Server, thread: threading.Thread,
                 port: int) -> None:
        self.studio = studio
        self.port = port
        self.base = f"http://{HOST}:{port}"
        self.url = studio.url(HOST, port)
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        """Stop serving (a job still running finishes in its own thread; analyses stop)."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.studio.close()

    def __enter__(self) -> RunningStudio:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_in_thread(studio: Studio, *, port: int = 0, ready_timeout_s: float = 15.0) -> RunningStudio:
    """Serve `studio` from a daemon thread on 127.0.0.1 (port 0: a free one); returns once ready."""
    sock = bind(port)
    bound_port = sock.getsockname()[1]
    server = _server(studio)
    thread = start_in_thread(server, sock, name=f"prep-studio-{bound_port}", what="the studio",
                             ready_timeout_s=ready_timeout_s)
    return RunningStudio(studio, server, thread, bound_port)
