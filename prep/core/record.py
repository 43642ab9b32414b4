"""Frozen data classes whose methods are not compiled at each start.

`dataclasses.dataclass` writes a class's `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__` and `__delattr__` out as source text and compiles them when the module is
imported. For the twenty-odd frozen classes `prep probe` and `prep estimate` load (model tables,
clip facts, the mp4 index, prices, settings), that compiling cost about as much CPU as starting
the interpreter, on every run. `record(frozen=True, ...)` makes the same kind of class from
functions compiled once with this module: `dataclass` still collects the fields (so
`dataclasses.fields`, `replace`, `asdict` and type checkers see a frozen dataclass) but is
asked to generate nothing, and methods that read the field list are installed instead.

The classes behave as `@dataclass(frozen=True, ...)` ones do: the same constructor (positional
and keyword-only fields, defaults, default factories, `init=False` fields, `__post_init__`),
repr (`repr=False` fields left out), equality and hash (`compare`/`hash` honoured),
`FrozenInstanceError` on assignment, pickling and copying of slotted instances. Only the
wording of a constructor's TypeError differs. tests/test_record.py holds every case against a
real dataclass. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from _thread import get_ident
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, cast, dataclass_transform

__all__ = ["record"]

_C = TypeVar("_C", bound=type[Any])
_MISSING: Any = dataclasses.MISSING
_OWN = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def record(*, frozen: bool, slots: bool = False, kw_only: bool = False) -> Callable[[_C], _C]:
    """`@dataclass(frozen=True, slots=..., kw_only=...)`, without compiling methods at import.

    `frozen=True` is required (written out, so that readers and type checkers see it); the
    other `dataclass` options keep their defaults (eq, repr, init, no ordering).
    """
    if not frozen:
        raise TypeError("record() makes frozen classes only: give frozen=True, or use @dataclass")

    def wrap(cls: _C) -> _C:
        return cast(_C, _make(cls, slots=slots, kw_only=kw_only))

    return wrap


def _make(cls: Any, *, slots: bool, kw_only: bool) -> Any:
    body = dict(cls.__dict__)
    for name in ("__setattr__", "__delattr__"):
        if name in body:  # as dataclass refuses for a frozen class
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    if not cls.__doc__:  # dataclass would write one from the constructor's signature
        raise TypeError(f"record class {cls.__name__} needs a docstring")
    # The fields only: no method, and no slotted copy of the class (made once, below).
    made: Any = dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only)
    fields = dataclasses.fields(made)
    names = tuple(f.name for f in fields)
    final: list[Any] = []  # the class __setattr__ and __delattr__ guard, once it is made
    methods: dict[str, Callable[..., Any]] = {
        "__init__": _init(made, fields),
        "__repr__": _repr(tuple(f.name for f in fields if f.repr)),
        "__eq__": _eq(_values(tuple(f.name for f in fields if f.compare))),
        "__setattr__": _setattr(final, frozenset(names)),
        "__delattr__": _delattr(final, frozenset(names)),
    }
    explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
    if not explicit_hash:
        methods["__hash__"] = _hash(_values(tuple(
            f.name for f in fields if (f.compare if f.hash is None else f.hash))))
    if slots:
        # Slotted frozen instances pickle and copy through these, as dataclass's do.
        methods["__getstate__"] = _getstate(names)
        methods["__setstate__"] = _setstate(names)
    namespace = dict(made.__dict__)
    for name, method in methods.items():
        if name in body and name not in ("__setattr__", "__delattr__", "__hash__"):
            continue  # the class's own, as dataclass keeps it
        method.__qualname__ = f"{made.__qualname__}.{method.__name__}"
        namespace[name] = method
    # The class is made again with its methods in it (setting each on a made class costs a
    # slot update apiece), and with its fields as slots when asked: dataclass's own way.
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    if slots:
        inherited: set[str] = set()
        for base in made.__mro__[1:-1]:
            declared = base.__dict__.get("__slots__", ())
            inherited.update((declared,) if isinstance(declared, str) else declared)
        namespace["__slots__"] = tuple(name for name in names if name not in inherited)
        for name in names:
            namespace.pop(name, None)  # a default stays in the field, not on the class
    made = type(made)(made.__name__, made.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    final.append(made)
    params = made.__dataclass_params__
    params.init = params.repr = params.eq = params.frozen = True  # what the class now does
    if hasattr(params, "slots"):  # where the version keeps it (3.12 on)
        params.slots = slots
    return made


def _values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of an object as a tuple (attrgetter gives a bare value for one)."""
    if len(names) > 1:
        return attrgetter(*names)
    return lambda obj: tuple(getattr(obj, name) for name in names)


def _init(cls: Any, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    qualname = cls.__qualname__
    taken = frozenset(f.name for f in fields if f.init)
    positional = tuple(f.name for f in fields if f.init and not f.kw_only)
    defaulted = False
    for f in fields:
        if f.init and not f.kw_only:
            has_default = f.default is not _MISSING or f.default_factory is not _MISSING
            if defaulted and not has_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            defaulted = defaulted or has_default
    plan: tuple[tuple[str, bool, Any, Any], ...] = tuple(
        (f.name, f.init, f.default, f.default_factory) for f in fields)
    post_init = hasattr(cls, "__post_init__")
    assign = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - the method's name
        if len(args) > len(positional):
            raise TypeError(f"{qualname}.__init__() takes {len(positional) + 1} positional "
                            f"arguments but {len(args) + 1} were given")
        for name, value in zip(positional, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{qualname}.__init__() got multiple values for argument {name!r}")
            kwargs[name] = value
        unknown = kwargs.keys() - taken
        if unknown:
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument "
                            f"{min(unknown)!r}")
        missing = []
        for name, init, default, factory in plan:
            if init and name in kwargs:
                value = kwargs[name]
            elif default is not _MISSING:
                value = default
            elif factory is not _MISSING:
                value = factory()
            else:
                if init:
                    missing.append(name)
                continue
            assign(self, name, value)
        if missing:
            raise TypeError(f"{qualname}.__init__() missing {len(missing)} required argument"
                            f"{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}")
        if post_init:
            self.__post_init__()

    return __init__


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    running: set[tuple[int, int]] = set()

    def __repr__(self: Any) -> str:  # noqa: N807
        key = (id(self), get_ident())
        if key in running:  # an object that holds itself, as dataclass's repr guards
            return "..."
        running.add(key)
        try:
            inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        finally:
            running.discard(key)
        return f"{self.__class__.__qualname__}({inner})"

    return __repr__


def _eq(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:  # noqa: N807
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:  # noqa: N807
        return hash(values(self))

    return __hash__


def _setattr(final: list[Any], names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:  # noqa: N807
        if type(self) is final[0] or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(final[0], self).__setattr__(name, value)

    return __setattr__


def _delattr(final: list[Any], names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:  # noqa: N807
        if type(self) is final[0] or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(final[0], self).__delattr__(name)

    return __delattr__


def _getstate(names: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    def __getstate__(self: Any) -> list[Any]:  # noqa: N807
        return [getattr(self, name) for name in names]

    return __getstate__


def _setstate(names: tuple[str, ...]) -> Callable[[Any, list[Any]], None]:
    def __setstate__(self: Any, state: list[Any]) -> None:  # noqa: N807
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    return __setstate__
