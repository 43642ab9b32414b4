"""How scripts/test spreads the tests over pytest-xdist workers (`-n auto --dist loadgroup`).

Two things on top of pytest-xdist's own `loadgroup`:

- **Groups that hold.** xdist tells a worker's `xdist_group` marks to its controller by writing
  `@group` at the end of each test's node id. pytest 9 keeps node ids in a structured form that
  xdist 3.8 does not write to, so the suffix is lost and every mark is ignored without a word
  (pytest-dev/pytest-xdist#1386): a module-scoped fixture (one Chromium, one `prepare` of every
  case, the face detector over the labelled set) was then made once per worker. Here each worker
  writes the group of every test it collected to a file in a folder the controller made and
  handed it (`workerinput`); the controller's scheduler reads the groups from there.
- **The long work first.** xdist hands the work out largest group first, by number of tests; a
  costly single test collected late (a sandbox batch, a browser test) then starts last, and one
  worker runs it while the other has nothing left. Here every unit of work (a group, or a test
  of its own) is weighed by what its tests cost by their marks (`COST`: media and browser tests
  cost about a hundred times a pure one), and the heaviest goes first.

Without xdist, or with another `--dist`, none of this runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

FOLDER_KEY = "prep_test_groups"  # the `workerinput` entry naming the folder
_FOLDER = pytest.StashKey[Path]()

# What a test costs, by its marks, in units of a pure test's (the median pure test takes a few
# milliseconds of CPU, the median `media` one a few tenths of a second and a browser test
# seconds): a test counts as its costliest mark. Only the order matters.
COST = {"browser": 300, "media": 100, "sandbox": 40, "fuzz": 20}
PURE = 1


def enabled(config: pytest.Config) -> bool:
    """Whether this is an xdist controller that hands out work by group."""
    return config.pluginmanager.hasplugin("dsession") and config.getvalue("dist") == "loadgroup"


def folder(config: pytest.Config) -> Path:
    """The controller's folder for the workers' groups, made on first use."""
    if _FOLDER not in config.stash:
        config.stash[_FOLDER] = Path(tempfile.mkdtemp(prefix="prep-tests-groups-"))
    return config.stash[_FOLDER]


def remove_folder(config: pytest.Config) -> None:
    path = config.stash.get(_FOLDER, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def cost(item: pytest.Item) -> int:
    names = {mark.name for mark in item.iter_markers()}
    return max((c for name, c in COST.items() if name in names), default=PURE)


def group(item: pytest.Item) -> str | None:
    """The test's `xdist_group` name, as pytest-xdist reads it (several are joined by `_`)."""
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                    for m in item.iter_markers("xdist_group")})
    return "_".join(names) if names else None


def write_groups(config: pytest.Config, items: Iterable[pytest.Item]) -> None:
    """On a worker: write each collected test's group and cost where the controller looks."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if not workerinput or FOLDER_KEY not in workerinput:
        return
    table = {item.nodeid: [group(item), cost(item)] for item in items}
    out = Path(workerinput[FOLDER_KEY]) / f"{workerinput.get('workerid', os.getpid())}.json"
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(table), encoding="utf-8")
    os.replace(tmp, out)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """A `loadgroup` scheduler that reads the groups the workers wrote, heaviest work first."""
    from xdist.scheduler import LoadGroupScheduling

    class GroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(config, log)
            self._table: dict[str, list[Any]] | None = None
            self._ordered = False

        def _entry(self, nodeid: str) -> list[Any] | None:
            if self._table is None:  # every worker has finished collecting by now
                found = sorted(folder(config).glob("*.json"))
                self._table = json.loads(found[0].read_text(encoding="utf-8")) if found else {}
            return self._table.get(nodeid)

        def _split_scope(self, nodeid: str) -> str:
            entry = self._entry(nodeid)
            if entry is None:  # an xdist that still writes `@group` into the node id
                return str(super()._split_scope(nodeid))
            return f"group:{entry[0]}" if entry[0] else nodeid

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the queue is complete at the first hand-out
                self._ordered = True
                weight = {scope: sum((self._entry(n) or [None, PURE])[1] for n in unit)
                          for scope, unit in self.workqueue.items()}
                for scope in sorted(weight, key=lambda s: -weight[s]):
                    self.workqueue.move_to_end(scope)
            super()._assign_work_unit(node)

    return GroupScheduling()
