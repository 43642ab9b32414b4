"""What rich would print to a stream that is not a terminal, written without loading rich.

Redirected to a file or a pipe, rich adds no colour and no markup: a table is columns padded with
spaces, a long line is wrapped at the console's width. Importing rich costs more CPU than the
Python interpreter's own start, so `prep probe` and `prep estimate` print their people's view
through this module when (a) rich would find no terminal on the stream and (b) every piece of
text is plain printable ASCII (no markup brackets, backslashes, emoji codes or wide characters).
Anything else goes through rich as before, so the output is the same byte for byte either way;
tests compare the two on the same tables and lines.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

__all__ = ["Cell", "is_plain", "simple", "table_lines", "width", "wrap"]

ELLIPSIS = "\u2026"
_WORD = re.compile(r"\s*\S+\s*")  # rich's word: leading space, the word, trailing space
_EMOJI = re.compile(r":\S*?:")  # what rich might read as an emoji code
_SIMPLE = re.compile(r"[ -Z\]-~]*")  # printable ASCII without `[` and `\`


def stream(to_stderr: bool) -> TextIO:
    return sys.stderr if to_stderr else sys.stdout


def is_plain(to_stderr: bool = False) -> bool:
    """True when rich would print to stdout (or stderr) as to a file: no terminal, no forced
    colour. Only on POSIX and outside Jupyter and IDLE, where rich's choice is as simple as that."""
    if os.name != "posix" or hasattr(builtins, "get_ipython"):
        return False
    if getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return False
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "0"
    if os.environ.get("FORCE_COLOR") is not None:
        return os.environ["FORCE_COLOR"] == ""
    isatty = getattr(stream(to_stderr), "isatty", None)
    try:
        return not (isatty is not None and isatty())
    except ValueError:  # a closed stream: rich counts it as no terminal
        return True


def width() -> int | None:
    """The width rich gives a console on POSIX: $COLUMNS, else the first of stdin, stdout and
    stderr that is a terminal, else 80. None for a $COLUMNS rich would take as 0 columns."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns) or None
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


def simple(*texts: str) -> bool:
    """Printable ASCII that rich prints as it is: no markup bracket, backslash or emoji code."""
    return all(_SIMPLE.fullmatch(text) and not _EMOJI.search(text) for text in texts)


def wrap(text: str, room: int) -> list[str]:
    """`text` wrapped as rich wraps a line at `room` columns (words kept whole, a word longer
    than the line folded, whitespace past the edge dropped). ASCII only (see `simple`)."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = len(word.rstrip())
        if room - offset >= length:
            offset += len(word)
        elif length > room:
            pieces = [word[i:i + room] for i in range(0, len(word), room)]
            for number, piece in enumerate(pieces):
                if start:
                    breaks.append(start)
                if number == len(pieces) - 1:
                    offset = len(piece)
                else:
                    start += len(piece)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    edges = [0, *breaks, len(text)]
    lines = []
    for begin, end in zip(edges, edges[1:], strict=False):
        line = text[begin:end]
        if len(line) > room:
            excess = len(line) - room
            spaces = len(line) - len(line.rstrip())
            line = line[:len(line) - min(spaces, excess)]
        lines.append(line[:room])
    return lines


class Cell:
    """A table cell: its text, and whether it is a path (shortened to fit, never split)."""

    def __init__(self, text: str, *, path: bool = False) -> None:
        self.text, self.path = text, path


def _ascii_cells(text: str) -> int:
    return len(text)


def _ascii_size(text: str, size: int) -> str:
    return text[:size].ljust(size)


def shorten_path(text: str, room: int, cell_len: Callable[[str], int] = _ascii_cells,
                 set_cell_size: Callable[[str, int], str] = _ascii_size) -> str:
    """`text` in at most `room` cells on one line, keeping the file name and as many folders
    before it as fit ('\u2026/footage/phone-pair.mov'), else the start of the name and its
    extension ('phone-pai\u2026.mov'). Cells are characters unless rich's measures are given
    (`prep.ui.render.shorten_path` passes them, for any text)."""
    room = max(room, 1)
    if cell_len(text) <= room:
        return text
    parts = text.replace("\\", "/").split("/")
    for keep in range(len(parts) - 1, 0, -1):
        tail = ELLIPSIS + "/" + "/".join(parts[-keep:])
        if cell_len(tail) <= room:
            return tail
    name = parts[-1]
    if room <= 2:
        return set_cell_size(name, room)
    dot = name.rfind(".")
    end_len = min(max(len(name) - dot, 0) if dot > 0 else 0, room // 2)
    end = name[len(name) - end_len:] if end_len else ""
    head = set_cell_size(name, room - 1 - cell_len(end)).rstrip()
    return head + ELLIPSIS + end


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[Cell]],
                right: Sequence[bool], room: int, path_cap: int) -> list[tuple[str, bool]]:
    """The lines `prep.ui.render.print_table` prints for a table without borders, headers
    shown, one space of padding inside each column edge but the outer two: as columns when it
    fits `room` (paths capped at `path_cap` when that makes it fit), else one block per row.
    Each line comes with whether rich would wrap it (False: printed as it is)."""

    def fits(cap: int | None) -> list[int] | None:
        widths = [len(h) for h in headers]
        for row in rows:
            for index, cell in enumerate(row):
                size = len(cell.text)
                widths[index] = max(widths[index], min(size, cap) if cap and cell.path else size)
        return widths if sum(widths) + 2 * (len(widths) - 1) <= room else None

    has_paths = any(cell.path for row in rows for cell in row)
    widths = fits(None) or (fits(path_cap) if has_paths else None)
    if widths is not None:
        def line(cells: Sequence[str]) -> str:
            return "  ".join(text.rjust(size) if flush else text.ljust(size)
                             for text, size, flush in zip(cells, widths, right, strict=True))

        out = [(line(headers), False)]
        out += [(line([shorten_path(c.text, w) if c.path else c.text
                       for c, w in zip(row, widths, strict=True)]), False) for row in rows]
        return out
    blocks: list[tuple[str, bool]] = []
    for row in rows:
        for index, (header, cell) in enumerate(zip(headers, row, strict=True)):
            prefix = "" if index == 0 else "  " + (f"{header}: " if header else "")
            value = shorten_path(cell.text, room - len(prefix)) if cell.path else cell.text
            if index and not value.strip():
                continue
            blocks.append((prefix + value, " " in value.strip()))
    return blocks
