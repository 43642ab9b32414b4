"""How the commands end: confirming the cost, answering in JSON or as a table, the exit code of a
list of results, and `--json` answering every exit of a command that promises it."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from prep.errors import ExitCode, Interrupted, PrepError, UsageError

__all__ = ["AnswersInJson", "answer", "can_ask", "confirm_cost", "exit_with", "json_or_table"]


def confirm_cost(question: str, *, yes: bool) -> None:
    """Ask `question [y/N]` on stderr unless `--yes`; no is the default.

    UsageError (exit 2, the same for every command) when the answer is no, or when there is no
    terminal to ask on: prep never guesses a yes.
    """
    if yes:
        return
    if not can_ask():
        raise UsageError("not submitting: the cost must be confirmed and stdin is not a terminal",
                         hint="pass --yes to accept the estimate (and --max-cost to cap it)")
    if not click.confirm(question, default=False, err=True):
        raise UsageError("not submitted: the cost was not confirmed; nothing was uploaded or "
                         "paid for", hint="run the same command again and answer y, or pass --yes")


def can_ask() -> bool:
    """Whether there is a person to ask: stdin is a terminal."""
    return sys.stdin.isatty()


def json_or_table(data: Any, table: Callable[[bool], None], *, json_: bool, quiet: bool) -> None:
    """`--json`: `data` as the one document on stdout, and the table on stderr unless `--quiet`;
    otherwise the table on stdout. `table(to_stderr)` draws it."""
    if json_:
        answer(data)
        if not quiet:
            table(True)
    else:
        table(False)


def answer(data: Any) -> None:
    """The command's JSON document on stdout (once: `AnswersInJson` then adds nothing)."""
    from prep.ui import render

    render.json_out(data)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["prep.answered"] = True


def exit_with(codes: Iterable[int]) -> None:
    """Exit with the highest of the results' exit codes, when any is not 0; else return."""
    worst = max(codes, default=0)
    if worst:
        sys.exit(worst)


# Set while a command runs when SIGTERM arrived: it is handled as Ctrl-C, but exits 143.
_terminated = threading.Event()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C's KeyboardInterrupt would be."""


def _on_term(signum: int, frame: Any) -> None:
    _terminated.set()
    raise _Terminated


@contextlib.contextmanager
def on_sigterm() -> Iterator[None]:
    """While a command runs (in the main thread): SIGTERM stops it as Ctrl-C does (what was left
    is said, partial files are removed), and `interrupt_code` then says 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _terminated.clear()
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def interrupt_code() -> int:
    """The exit code of an interrupted command: 143 after SIGTERM, else 130 (Ctrl-C)."""
    return ExitCode.TERMINATED if _terminated.is_set() else ExitCode.INTERRUPTED


def _exit_code(err: BaseException) -> int:
    if isinstance(err, (Interrupted, KeyboardInterrupt)):
        return interrupt_code()
    if isinstance(err, PrepError):
        return err.exit_code
    if isinstance(err, click.ClickException):
        return err.exit_code
    return 1


def _message(err: BaseException) -> tuple[str, str]:
    if isinstance(err, PrepError):
        return err.message, err.hint
    if isinstance(err, click.ClickException):
        return err.format_message(), ""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted", ""
    if isinstance(err, click.exceptions.Abort):
        return "aborted", ""
    return f"internal error: {type(err).__name__}: {err}", "this is a bug in prep; please report it"


class AnswersInJson(click.Command):
    """A command whose `--json` answers every exit with one JSON document: its own, or, when it
    stops before it has one (a bad option, a missing key, a clip that cannot be used, Ctrl-C),
    `error_answer(message, exit_code, hint)`. The error still goes to stderr as usual."""

    def __init__(self, *args: Any, error_answer: Callable[[str, int, str], dict[str, Any]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_answer = error_answer

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        given = list(args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as err:  # click's own usage errors, before the command runs
            if "--json" in given:
                self._answer(err)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, SystemExit):
            raise
        except BaseException as err:
            if ctx.params.get("json_") and not ctx.meta.get("prep.answered"):
                self._answer(err)
            raise

    def _answer(self, err: BaseException) -> None:
        from prep.ui import render

        message, hint = _message(err)
        render.json_out(self.error_answer(message, _exit_code(err), hint))

