"""Raw media out of an ffmpeg pipe: the one way prep streams decoded frames and samples.

`FfmpegPipe.start(argv, path=...)` runs ffmpeg with its stdout a pipe of fixed-size
records (rawvideo frames, s16le samples) and reads its stderr on a thread of its own, so that
neither pipe can stall ffmpeg: each stderr line goes first to `on_line` when one is given, and
the last lines it does not take are kept (`tail`) for the error message. `records(size)` reads
the records; `failure(doing)` is the FfmpegError naming the file with ffmpeg's last meaningful
line; `stop()` (also on leaving a `with` block) kills ffmpeg and its process group if it is still
running, reaps it and closes its pipes. ffmpeg runs in its own process group with the
parent-death signal set (`child_options`), so no decoder outlives prep. `grab_frames`
(`prep.media.frames`) and `prep pick`'s analysis (`prep.pick.analyze`) both stream through it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from prep.errors import FfmpegError
from prep.media.ffmpeg import child_options, kill_group

__all__ = ["FfmpegPipe", "LineReader", "ffmpeg_input", "records"]

# Hears one stderr line; True when it took the line (it is then not kept for the error message).
LineReader = Callable[[str], bool]
# How many stderr lines are kept for the error message.
TAIL_LINES = 30
# stderr lines that say nothing about what went wrong (stream listings, headers).
_BOILERPLATE = ("  ", "Input #", "Stream", "Output")


def ffmpeg_input(path: Path) -> str:
    """The argument that names `path` to ffmpeg as a plain file, whatever its name."""
    # `file:` keeps a name that starts with '-' or contains ':' from being read as an option
    # or a protocol.
    return "file:" + str(path.resolve())


def records(stream: IO[bytes], size: int, *, pad: bool = False) -> Iterator[bytes]:
    """Fixed-size records from a pipe; a short last record is dropped (or padded with zeros)."""
    while True:
        data = stream.read(size)
        if len(data) == size:
            yield data
            continue
        if data and pad:
            yield data + bytes(size - len(data))
        return


class FfmpegPipe:
    """One running ffmpeg whose stdout carries raw records; see the module docstring."""

    def __init__(self, proc: subprocess.Popen[bytes], path: Path | str, *,
                 on_line: LineReader | None = None, tail_lines: int = TAIL_LINES) -> None:
        self.proc = proc
        self.path = path
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self._on_line = on_line
        self._errors: list[BaseException] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, argv: Sequence[str], *, path: Path | str, on_line: LineReader | None = None,
              tail_lines: int = TAIL_LINES) -> FfmpegPipe:
        """Start ffmpeg (`argv[0]`, found with `find_ffmpeg`). `path` is the file its errors
        name; `on_line` hears every stderr line (from the reader thread) and returns True for a
        line it took, which is then not kept in `tail`."""
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    **child_options())
        except OSError as err:
            raise FfmpegError(path, f"could not start ffmpeg ({err})") from err
        return cls(proc, path, on_line=on_line, tail_lines=tail_lines)

    def __enter__(self) -> FfmpegPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def records(self, size: int, *, pad: bool = False) -> Iterator[bytes]:
        """The records of `size` bytes on ffmpeg's stdout, until it closes it."""
        assert self.proc.stdout is not None
        return records(self.proc.stdout, size, pad=pad)

    def wait(self) -> int:
        """Wait for ffmpeg to end and for its stderr to be read; its exit status. An error raised
        by `on_line` is raised here."""
        returncode = self.proc.wait()
        self._reader.join()
        if self._errors:
            raise self._errors[0]
        return returncode

    def failure(self, doing: str) -> FfmpegError:
        """The error for a failed run: `<path>: <doing> (<ffmpeg's last meaningful line>)`."""
        lines = [line for line in self.tail if line.strip()]
        meaningful = [line for line in lines if not line.startswith(_BOILERPLATE)]
        last = (meaningful or lines or ["ffmpeg failed without saying why"])[-1]
        return FfmpegError(self.path, f"{doing} ({last.strip()})", detail="\n".join(lines))

    def check(self, doing: str) -> None:
        """Wait for ffmpeg; raise `failure(doing)` when it did not end well."""
        if self.wait() != 0:
            raise self.failure(doing)

    def kill(self) -> None:
        """Kill ffmpeg now (from any thread); `stop` still reaps it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def stop(self) -> None:
        """Kill ffmpeg (and its process group) if it is still running, reap it, close its pipes."""
        if self.proc.poll() is None:
            kill_group(self.proc)
        else:
            self.proc.wait()
        self._reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        if stream is None:
            return
        try:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                if self._on_line is None or not self._on_line(line):
                    self.tail.append(line)
        except BaseException as exc:  # handed to the thread that waits, raised there
            self._errors.append(exc)
            self.kill()
            for _ in stream:  # keep draining, so ffmpeg is never stalled by a full pipe
                pass

