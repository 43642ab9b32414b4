"""`record` classes behave as the frozen dataclasses they replace (prep/core/record.py).

Each case builds the same class body twice, once with `@dataclass(frozen=True, ...)` and once
with `@record(frozen=True, ...)`, and compares what a caller can see: constructor, repr,
equality, hash, frozen errors, pickling, copying, `dataclasses` helpers and match arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass, field
from fractions import Fraction
from typing import Any

import pytest

from prep.core.record import record

OPTIONS = [{"slots": True}, {"slots": True, "kw_only": True}, {}, {"kw_only": True}]


def _pair(options: dict[str, bool], build: Callable[[Callable[[Any], Any]], Any]) -> tuple[Any, Any]:
    """(the dataclass, the record) of one class body, `build(decorator)`."""
    return (build(dataclass(frozen=True, **options)), build(record(frozen=True, **options)))


def _take(decorate: Callable[[Any], Any]) -> Any:
    @decorate
    class Take:
        """A clip's facts, with every kind of field."""

        path: str
        duration_ms: int
        fps: Fraction = Fraction(30)
        tags: tuple[str, ...] = ()
        names: Mapping[str, str] = field(default_factory=dict, hash=False)
        secret: str | None = field(default=None, repr=False)
        note: str = field(default="", compare=False)
        loose: int = field(default=0, hash=False)
        derived: int = field(default=0, init=False)

        def __post_init__(self) -> None:
            if self.duration_ms < 0:
                raise ValueError("negative")
            object.__setattr__(self, "derived", self.duration_ms // 1000)

        @property
        def seconds(self) -> int:
            return self.duration_ms // 1000

    return Take


# Module-level classes (pickle finds a class by its name): the dataclass and the record of each
# option set.
PAIRS: list[tuple[dict[str, bool], Any, Any]] = []
for _number, _options in enumerate(OPTIONS):
    for _kind, _cls in zip(("Dataclass", "Record"), _pair(_options, _take), strict=True):
        _cls.__name__ = _cls.__qualname__ = f"Take{_kind}{_number}"
        globals()[_cls.__name__] = _cls
    PAIRS.append((_options, globals()[f"TakeDataclass{_number}"], globals()[f"TakeRecord{_number}"]))


def _args(kw_only: bool) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {"path": "a.mov", "duration_ms": 5_000}),
        ((), {"path": "a.mov", "duration_ms": 5_000, "tags": ("x",), "names": {"k": "v"},
              "secret": "key", "note": "n", "loose": 3}),
        ((), {"duration_ms": 1, "path": "b.mp4", "fps": Fraction(30000, 1001)}),
    ]
    if not kw_only:
        calls += [(("a.mov", 5_000), {}), (("a.mov",), {"duration_ms": 7}),
                  (("c", 2, Fraction(25), ("t",)), {"note": "x"})]
    return calls


def _bad_args(kw_only: bool) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}), ((), {"path": "a"}), ((), {"path": "a", "duration_ms": 1, "derived": 3}),
        ((), {"path": "a", "duration_ms": 1, "nope": 1}), ((1, 2, 3, 4, 5, 6, 7, 8, 9), {}),
    ]
    if not kw_only:
        calls += [(("a",), {"path": "b", "duration_ms": 1})]
    else:
        calls += [(("a", 1), {})]
    return calls


@pytest.mark.parametrize(("options", "dc", "rec"), PAIRS)
def test_a_record_is_built_read_and_compared_as_the_dataclass(options: dict[str, bool], dc: Any,
                                                              rec: Any) -> None:
    kw_only = options.get("kw_only", False)
    assert dataclasses.is_dataclass(rec)
    assert [(f.name, f.init, f.repr, f.compare, f.hash, f.kw_only) for f in dataclasses.fields(dc)] \
        == [(f.name, f.init, f.repr, f.compare, f.hash, f.kw_only) for f in dataclasses.fields(rec)]
    assert dc.__match_args__ == rec.__match_args__
    assert rec.__dataclass_params__.frozen and rec.__dataclass_params__.eq
    for args, kwargs in _args(kw_only):
        a, b = dc(*args, **kwargs), rec(*args, **kwargs)
        assert repr(a).replace(dc.__name__, "Take") == repr(b).replace(rec.__name__, "Take")
        assert "key" not in repr(b) and repr(b).startswith(rec.__name__ + "(path=")
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
        assert dataclasses.astuple(a) == dataclasses.astuple(b)
        assert hash(a) == hash(b)
        assert b.seconds == a.seconds and b.derived == a.derived
        assert b == rec(*args, **kwargs) and b != a  # another class is never equal
        assert (b == replace_note(b)) is (a == replace_note(a)) is True  # compare=False
        assert hash(b) == hash(dataclasses.replace(b, loose=99))  # hash=False
        assert b != dataclasses.replace(b, fps=Fraction(1))
        assert dataclasses.replace(b, path="z").path == "z"
        assert copy.copy(b) == b and copy.deepcopy(b) == b
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(b, protocol)) == b
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'path'"):
            b.path = "x"
        with pytest.raises(FrozenInstanceError, match="cannot delete field 'path'"):
            del b.path
        with pytest.raises(FrozenInstanceError):
            b.unknown = 1
    # A fresh default from each factory, as the dataclass makes.
    first, second = (rec(**_args(kw_only)[0][1]) for _ in range(2))
    assert first.names == {} and first.names is not second.names
    for args, kwargs in _bad_args(kw_only):
        with pytest.raises(TypeError):
            dc(*args, **kwargs)
        with pytest.raises(TypeError):
            rec(*args, **kwargs)
    with pytest.raises(ValueError, match="negative"):
        rec(**{"path": "a", "duration_ms": -1})


def replace_note(obj: Any) -> Any:
    return dataclasses.replace(obj, note="another note")


def test_a_record_holding_itself_repr_as_the_dataclass() -> None:
    def build(decorate: Callable[[Any], Any]) -> Any:
        @decorate
        class Box:
            """A box."""

            items: list[Any]

        Box.__qualname__ = "Box"
        return Box

    for cls in _pair({"slots": True}, build):
        box = cls([])
        box.items.append(box)
        assert repr(box) == "Box(items=[...])"


def test_one_field_and_no_field_records_compare_as_tuples() -> None:
    def one(decorate: Callable[[Any], Any]) -> Any:
        @decorate
        class One:
            """One value."""

            value: float

        return One

    def none(decorate: Callable[[Any], Any]) -> Any:
        @decorate
        class Nothing:
            """No value."""

        return Nothing

    nan = float("nan")
    for cls in _pair({"slots": True}, one):
        same = cls(nan)
        assert same == same and cls(1.0) == cls(1.0) and cls(1.0) != cls(2.0)
        assert hash(cls(1.0)) == hash((1.0,))
    for cls in _pair({}, none):
        assert cls() == cls() and hash(cls()) == hash(())


def test_a_class_s_own_methods_are_kept() -> None:
    @record(frozen=True, slots=True)
    class Span:
        """An inclusive range."""

        low: int
        high: int

        def __repr__(self) -> str:
            return f"{self.low}..{self.high}"

        def __hash__(self) -> int:
            return 7

    assert repr(Span(1, 2)) == "1..2" and hash(Span(1, 2)) == 7 and Span(1, 2) == Span(1, 2)


def test_what_a_record_refuses() -> None:
    with pytest.raises(TypeError, match="frozen=True"):
        record(frozen=False)
    with pytest.raises(TypeError, match="docstring"):
        @record(frozen=True)
        class NoDoc:
            value: int
    with pytest.raises(TypeError, match="non-default argument 'b'"):
        @record(frozen=True)
        class Order:
            """Out of order."""

            a: int = 0
            b: int  # type: ignore[misc]
    with pytest.raises(TypeError, match="__setattr__"):
        @record(frozen=True)
        class Own:
            """Sets its own attributes."""

            a: int

            def __setattr__(self, name: str, value: Any) -> None:
                pass
