"""A local stand-in for EvoLink: files API, wan2.6-reference-video generation and task queries.

It behaves as `docs/spec/evolink-api.md` describes EvoLink, strictly enough that a client that
works against it works against the real service, and adds fault injection and a movable clock for
tests. Run it with `prep sandbox`, or in-process::

    from prep.sandbox import SandboxConfig, run_in_thread
    with run_in_thread(SandboxConfig(speed=50)) as sandbox:
        print(sandbox.url, sandbox.key)
        sandbox.fail_next("rate_limit", endpoint="generate")
        ...
        print(sandbox.state()["tasks"])
"""

from __future__ import annotations

from .app import SandboxApp, create_app
from .config import DEMO_KEY, NO_ACCESS_KEY, NO_CREDITS_KEY, KeyConfig, SandboxConfig
from .faults import ENDPOINTS as FAULT_ENDPOINTS
from .faults import KINDS as FAULT_KINDS
from .server import RunningSandbox, Sandbox, bind, run_in_thread, serve

__all__ = [
    "DEMO_KEY",
    "FAULT_ENDPOINTS",
    "FAULT_KINDS",
    "NO_ACCESS_KEY",
    "NO_CREDITS_KEY",
    "KeyConfig",
    "RunningSandbox",
    "Sandbox",
    "SandboxApp",
    "SandboxConfig",
    "bind",
    "create_app",
    "run_in_thread",
    "serve",
]
