"""The package's shape: every import in prep/ runs down the layers, never up, never in a circle.

Layers, lowest first (the README's Development section lists them): core (pure rules) -> settings
-> the edges (media, api) -> pick -> jobs -> ui. `errors` and `files` sit under everything;
`configfile` (editing the config file) sits beside settings, for the ui alone. The sandbox stands
apart: it may use the shared plumbing and ffmpeg, but none of the client's billing, probing,
planning or request code, so that it can catch their mistakes. Every import counts, including
those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "prep"

BASE = {"prep.errors", "prep.files"}
# What each layer may import besides itself and BASE.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "settings": {"core"},
    "configfile": {"core", "settings"},
    "media": {"core"},  # the ffmpeg and cache folder come from the caller's settings
    "api": {"core", "settings"},
    "pick": {"core", "media"},
    "jobs": {"core", "settings", "media", "api", "pick"},
    "ui": {"core", "settings", "configfile", "media", "api", "pick", "jobs", "sandbox"},
    "sandbox": {"settings", "media.ffmpeg"},
    "errors": set(),
    "files": set(),
    "__main__": {"ui"},
}
# The sandbox must never share these with the client: its own twins catch the client's bugs.
SANDBOX_FORBIDDEN = ("prep.core.billing", "prep.core.request", "prep.core.plan", "prep.core.window",
                     "prep.core.streams", "prep.core.clipinfo", "prep.media.probe", "prep.media.mp4",
                     "prep.media.prepare", "prep.api", "prep.jobs")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, statements: list[ast.Import | ast.ImportFrom]) -> Iterator[str]:
    """Every prep module `path` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in statements:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "prep")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "prep":
                continue
            # `from prep.core import rules` imports the module prep.core.rules
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield candidate if _exists(candidate) else target


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@cache
def _import_statements() -> dict[Path, list[ast.Import | ast.ImportFrom]]:
    """Every import statement of every module in the package, anywhere in it (parsed once)."""
    return {p: [n for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                if isinstance(n, ast.Import | ast.ImportFrom)]
            for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def _graph() -> dict[str, frozenset[str]]:
    """Each module and the prep modules it imports (built once)."""
    return {_module_name(p): frozenset(_imports(p, nodes)) for p, nodes in _import_statements().items()}


def _allowed(source: str, target: str) -> bool:
    src, dst = _layer(source), _layer(target)
    if src == "":  # the package's own __init__ re-exports the public API
        return True
    if target == "prep":  # the lazy public API is for users and the CLI
        return src == "ui"
    if target in BASE or src == dst:
        return True
    allowed = ALLOWED[src]
    return dst in allowed or target.startswith(tuple(f"prep.{a}" for a in allowed if "." in a))


def test_every_module_has_a_layer() -> None:
    layers = {_layer(m) for m in _graph()} - {""}
    assert layers <= set(ALLOWED), f"modules outside the known layers: {layers - set(ALLOWED)}"


def test_imports_only_go_down() -> None:
    upward = [f"{src} imports {dst}" for src, targets in _graph().items() for dst in sorted(targets)
              if not _allowed(src, dst)]
    assert not upward, "imports that run up or across the layers:\n" + "\n".join(upward)


def test_core_imports_nothing_but_core() -> None:
    graph = _graph()
    bad = [f"{src} imports {dst}" for src, targets in graph.items() if _layer(src) == "core"
           for dst in targets if _layer(dst) != "core" and dst != "prep.errors"]
    assert not bad, "\n".join(bad)


def test_core_does_no_io() -> None:
    """core/ is pure: no subprocess, sockets, HTTP, clock or environment."""
    forbidden = {"subprocess", "socket", "httpx", "os", "time", "sqlite3", "shutil", "threading"}
    bad = []
    for path, statements in _import_statements().items():
        if path.parent != PACKAGE / "core":
            continue
        for node in statements:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            bad += [f"{path.name} imports {n}" for n in names if n.split(".")[0] in forbidden]
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = _graph()
    seen: dict[str, int] = {}  # 1: on the current path, 2: finished
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or nxt == node or node == "prep" or nxt == "prep":
                continue
            if seen.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for module in graph:
        if module not in seen:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("forbidden", SANDBOX_FORBIDDEN)
def test_sandbox_shares_no_rules_with_the_client(forbidden: str) -> None:
    users = [src for src, targets in _graph().items() if _layer(src) == "sandbox"
             for dst in targets if dst == forbidden or dst.startswith(forbidden + ".")]
    assert not users, f"the sandbox uses {forbidden} ({', '.join(sorted(set(users)))})"


def test_settings_are_loaded_only_in_the_ui() -> None:
    """Below ui/ nothing loads settings behind its caller's back: the ffmpeg, the cache folder and
    the rest are passed down (a Settings value, or the one field a function needs)."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if _layer(module) not in ("core", "media", "api", "pick", "jobs"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{module} imports load_settings" for n in names if n == "load_settings"]
    assert not bad, "\n".join(bad)


def test_cli_is_the_only_place_click_is_imported() -> None:
    """The library never imports click or rich: only ui/ talks to a person."""
    bad = []
    for path, statements in _import_statements().items():
        module = _module_name(path)
        if _layer(module) in ("ui", "sandbox"):
            continue
        for node in statements:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{module} imports {n}" for n in names if n.split(".")[0] in ("click", "rich")]
    assert not bad, "\n".join(bad)
