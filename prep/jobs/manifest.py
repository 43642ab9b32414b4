"""The batch manifest: many generate jobs in one CSV or JSONL file, every row checked up front.

Contract (README, "prep batch"): each job has a `name`, its `clips` (1-3 clip specs), a `prompt`,
and optionally `duration`, `quality`, `aspect_ratio`, `shot_type`, `callback_url`, `pick`
(choose a window, as `prep pick` does, for each clip given without one), `model` (the standard or
the flash model) and `generate_audio` (flash only: true or false).

- JSONL: one object per line; `clips` is a list whose items are clip specs (`"a.mov@1:05-1:20"`) or
  objects `{"path": ..., "start": ..., "end": ...}` (`start`/`end` optional, timecodes or seconds).
- CSV: a header row with the same column names; `clips` holds clip specs separated by `;`;
  `pick` and `generate_audio` are true/false, yes/no or 1/0 (any case); blank means false for
  `pick` and the model's default for `generate_audio`.

Relative clip paths resolve against the manifest's folder. `parse_manifest` is pure (text in,
jobs and problems out); `load_manifest` reads the file and checks that every clip exists. Problems
carry the manifest's line number and are all collected, never just the first.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prep.core import rules, timecode
from prep.core.clipspec import ClipSpec, Window, parse_clip_spec
from prep.core.references import ReferenceKind, ReferenceSpec, check_references, default_binding
from prep.core.request import AUTO_ASPECT, RequestOptions, check_clip_count, check_model
from prep.errors import ExitCode, ManifestError, UsageError

__all__ = [
    "AUTO_ASPECT",
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "JobSpec",
    "Manifest",
    "ManifestError",
    "Problem",
    "load_manifest",
    "manifest_from_rows",
    "parse_manifest",
]

Format = Literal["csv", "jsonl", "command", "timeline"]  # command: the one job of `prep generate`

REQUIRED_COLUMNS = ("name", "clips", "prompt")
# The request's fields (RequestOptions' JSON keys) less the prompt, and the manifest's own.
REQUEST_COLUMNS = tuple(k for k in RequestOptions().as_dict() if k != "prompt")
# A job's references besides its clips, one column per kind (prep.core.references' kinds).
REFERENCE_COLUMNS: tuple[ReferenceKind, ...] = ("image", "audio", "voice")
OPTIONAL_COLUMNS = (*REQUEST_COLUMNS, "pick", *REFERENCE_COLUMNS)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
CLIP_KEYS = ("path", "start", "end")
VOICE_KEYS = ("path", "for")
# Every request rule (prompt, clip count, duration, quality, aspect ratio, shot type, callback URL,
# model, audio) is prep.core.request's; a row's problems are its UsageError messages, named by the
# field.
# `aspect_ratio: auto` (AUTO_ASPECT) is chosen from the clips once they are probed.
MAX_NAME_CHARS = 100
_NAME_FORBIDDEN = set('/\\:*?"<>|')
_TRUE_WORDS = ("true", "yes", "1")
_FALSE_WORDS = ("false", "no", "0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a manifest: where (line and job name) and what.

    `exit_code` is 3 when a referenced clip is missing or unusable and 2 for everything else.
    """

    line: int
    message: str
    name: str = ""
    exit_code: int = 2

    def text(self, source: str) -> str:
        """`manifest.csv:4 (job 'intro'): the message`."""
        where = f"{source}:{self.line}" if self.line else source
        if self.name:
            where += f" (job {self.name!r})"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """One generate job of a batch, as the manifest describes it (validated)."""

    line: int
    name: str
    clips: tuple[ClipSpec, ...]
    request: RequestOptions  # with its prompt; the aspect ratio may still be `auto`
    pick: bool = False
    references: tuple[ReferenceSpec, ...] = ()  # images, standalone audio, voices

    @property
    def clips_to_pick(self) -> tuple[int, ...]:
        """Indexes of the clips that get a picked window (with `pick`, those given without one)."""
        if not self.pick:
            return ()
        return tuple(i for i, c in enumerate(self.clips)
                     if c.window.start is None and c.window.end is None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form: what the journal records and `--json` prints."""
        data = {"name": self.name, "line": self.line, "clips": [_clip_dict(c) for c in self.clips],
                **self.request.as_dict(), "pick": self.pick}
        if self.references:  # absent when none: journals written before references match
            data["references"] = [r.as_dict() for r in self.references]
        return data


def _clip_dict(spec: ClipSpec) -> dict[str, Any]:
    window = spec.window
    return {
        "path": str(spec.path),
        "start": window.start.text if window.start else None,
        "end": window.end.text if window.end else None,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """A parsed manifest: the jobs whose rows are valid, and every problem found."""

    source: str
    base_dir: Path
    format: Format
    jobs: tuple[JobSpec, ...]
    problems: tuple[Problem, ...] = field(default=())
    # From a timeline file: where each job's event sat, for `prep batch export` (JSON-able).
    timeline: Mapping[str, Any] | None = None

    def raise_for_problems(self) -> None:
        """ManifestError listing every problem, if there is any."""
        if self.problems:
            raise ManifestError(self.source, list(self.problems))


# -- reading ---------------------------------------------------------------------------------------


def detect_format(path: Path, text: str) -> Format:
    """By extension (.csv, .jsonl/.ndjson), else by the first character (`{` means JSONL)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def load_manifest(path: Path | str, *, fmt: Format | None = None) -> Manifest:
    """Read, parse and validate a manifest, and check that every clip it names is a file.

    Problems are returned in the Manifest, not raised: call `raise_for_problems()` to stop on them.
    A file that cannot be read at all raises UsageError. (A timeline file is read into the same
    Manifest by `prep.jobs.timeline.load_jobs`.)
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except FileNotFoundError as err:
        raise UsageError(f"{source}: no such manifest file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{source}: the manifest cannot be read ({err})",
                         hint="a manifest is a UTF-8 CSV or JSONL file") from err
    manifest = parse_manifest(text, fmt=fmt or detect_format(source, text),
                              base_dir=source.resolve().parent, source=str(source))
    extra = list(_file_problems(manifest.jobs, lambda p: p.is_file(), lambda p: p.exists()))
    if not extra:
        return manifest
    bad_lines = {p.line for p in extra}
    return Manifest(
        source=manifest.source, base_dir=manifest.base_dir, format=manifest.format,
        jobs=tuple(j for j in manifest.jobs if j.line not in bad_lines),
        problems=tuple(sorted(manifest.problems + tuple(extra), key=lambda p: p.line)),
    )


def _file_problems(
    jobs: tuple[JobSpec, ...], is_file: Callable[[Path], bool], exists: Callable[[Path], bool]
) -> Iterator[Problem]:
    for job in jobs:
        for spec in job.clips:
            if is_file(spec.path):
                continue
            problem = "is a folder, not a video file" if exists(spec.path) else "no such file"
            yield Problem(line=job.line, name=job.name, exit_code=ExitCode.MEDIA,
                          message=f"clip {spec.text or spec.path}: {problem} ({spec.path})")
        for ref in job.references:
            if not is_file(ref.path):
                problem = "is a folder, not a file" if exists(ref.path) else "no such file"
                yield Problem(line=job.line, name=job.name, exit_code=ExitCode.MEDIA,
                              message=f"{ref.kind} {ref.path.name}: {problem} ({ref.path})")


def parse_manifest(text: str, *, fmt: Format, base_dir: Path, source: str = "manifest") -> Manifest:
    """Parse and validate manifest text (pure: no file is opened or checked)."""
    problems: list[Problem] = []
    rows = list(_csv_rows(text, problems) if fmt == "csv" else _jsonl_rows(text, problems))
    return manifest_from_rows(rows, fmt=fmt, base_dir=base_dir, source=source, problems=problems)


def manifest_from_rows(rows: Sequence[tuple[int, Mapping[str, Any]]], *, fmt: Format, base_dir: Path,
                       source: str, problems: list[Problem] | None = None,
                       timeline: Mapping[str, Any] | None = None) -> Manifest:
    """Validate rows (line number, fields as in a JSONL line) into a Manifest (pure).

    A timeline's reader gives its events here as rows, so they are checked as a CSV row is.
    """
    problems = list(problems or ())
    jobs: list[JobSpec] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        row_problems: list[str] = []
        job = _job(line, row, base_dir, row_problems, fmt)
        name = row.get("name")
        name_text = name.strip() if isinstance(name, str) else ""
        if name_text:
            folded = name_text.casefold()
            if folded in seen:
                row_problems.append(f"duplicate name {name_text!r} (first used on line "
                                    f"{seen[folded]}); every job needs its own name (it names "
                                    "the result file)")
            else:
                seen[folded] = line
        problems.extend(Problem(line=line, name=name_text, message=m) for m in row_problems)
        if job is not None and not row_problems:
            jobs.append(job)
    if not rows and not problems:
        problems.append(Problem(line=0, message="the manifest has no jobs"))
    return Manifest(source=source, base_dir=base_dir, format=fmt, jobs=tuple(jobs),
                    problems=tuple(sorted(problems, key=lambda p: p.line)), timeline=timeline)


def _jsonl_rows(text: str, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(Problem(line=number, message=f"not valid JSON ({err.msg} at column "
                                                         f"{err.colno})"))
            continue
        except RecursionError:  # nested deeper than Python's parser goes
            problems.append(Problem(line=number, message="not valid JSON (nested too deeply)"))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(line=number, message="each line must be a JSON object "
                                                         '({"name": ..., "clips": [...], "prompt": ...})'))
            continue
        yield number, value


def _csv_rows(text: str, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                problems.extend(_header_problems(header, line))
                continue
            if len(row) > len(header):
                problems.append(Problem(line=line, message=f"{len(row)} cells but the header has "
                                                           f"{len(header)} columns"))
                continue
            yield line, {col: cell for col, cell in zip(header, row, strict=False)
                         if col in COLUMNS and cell.strip() != ""}
    except csv.Error as err:
        problems.append(Problem(line=reader.line_num, message=f"not valid CSV ({err})"))


def _header_problems(header: list[str], line: int) -> Iterator[Problem]:
    for col in header:
        if col not in COLUMNS:
            yield Problem(line=line, message=f"unknown column {col!r}; the columns are "
                                             f"{', '.join(COLUMNS)}")
    for col in REQUIRED_COLUMNS:
        if col not in header:
            yield Problem(line=line, message=f"the header has no {col!r} column (required)")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        yield Problem(line=line, message=f"column {dupes[0]!r} appears more than once")


# -- validating one row ----------------------------------------------------------------------------


def _job(line: int, row: Mapping[str, Any], base_dir: Path, problems: list[str],
         fmt: Format = "jsonl") -> JobSpec | None:
    for key in row:
        if key not in COLUMNS:
            problems.append(f"unknown field {key!r}; the fields are {', '.join(COLUMNS)}")
    name = _name(row.get("name"), problems)
    clips = _clips(row.get("clips"), base_dir, problems, model=_model_of(row.get("model")))
    prompt = _prompt(row.get("prompt"), problems)
    values = {**_request_cells(row, problems, words=fmt == "csv"), "prompt": prompt}
    pick = _pick(row.get("pick"), problems, words=fmt == "csv")
    request = RequestOptions.from_dict(values, problems=problems)
    refs = _references(row, base_dir, problems)
    if request is not None and clips is not None and refs:
        try:
            check_references(request.spec, refs, len(clips), manifest=True)
        except UsageError as err:
            problems.append(err.message + (f" ({err.hint})" if err.hint else ""))
    if problems or name is None or clips is None or prompt is None or request is None:
        return None
    return JobSpec(line=line, name=name, clips=clips, request=request, pick=pick, references=refs)


def _references(row: Mapping[str, Any], base_dir: Path, problems: list[str]
                ) -> tuple[ReferenceSpec, ...]:
    """The row's `image`, `audio` and `voice` files: in CSV several separated by `;` as clips
    are; in JSONL a list (or one text). A voice is `PATH` or `PATH@video2` (what it speaks for;
    default: the Nth voice, videoN), in JSONL also `{"path": ..., "for": "video2"}`."""
    refs: list[ReferenceSpec] = []
    for kind in REFERENCE_COLUMNS:
        for number, given in enumerate(_cell_items(row.get(kind)), start=1):
            try:
                path, binds = _reference_item(kind, given)
            except UsageError as err:
                problems.append(f"{kind} {number}: {err.message}")
                continue
            if kind == "voice":
                binds = binds or default_binding(sum(1 for r in refs if r.kind == "voice"))
            refs.append(ReferenceSpec(kind=kind, path=base_dir / path, binds=binds))
    return tuple(refs)


def _cell_items(value: Any) -> list[Any]:
    """A reference cell's items: CSV text split at `;`, a JSONL list as it is, one value alone."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value if isinstance(value, list) else [value]


def _reference_item(kind: str, given: Any) -> tuple[str, str | None]:
    """One reference item as its path and, for a voice, what it was said to speak for (None:
    the default). UsageError says what is wrong with it."""
    item: Any = given
    binds: Any = None
    if kind == "voice" and isinstance(given, dict):
        unknown = [k for k in given if k not in VOICE_KEYS]
        if unknown:
            raise UsageError(f"unknown key {unknown[0]!r}; the keys are {', '.join(VOICE_KEYS)}")
        item, binds = given.get("path"), given.get("for")
    elif kind == "voice" and isinstance(given, str) and "@" in given:
        item, _, binds = given.rpartition("@")
    if not isinstance(item, str) or not item.strip():
        raise UsageError("give a file path (text)")
    if binds is not None and not isinstance(binds, str):
        raise UsageError("'for' must be text such as video1")
    return item.strip(), (binds.strip() or None) if binds else None


def _request_cells(row: Mapping[str, Any], problems: list[str], *, words: bool) -> dict[str, Any]:
    """The row's request fields as values (CSV text read as numbers and true/false); the rules
    themselves are RequestOptions'. A cell that cannot be read is a problem and left out."""
    values: dict[str, Any] = {}
    for key in REQUEST_COLUMNS:
        value = row.get(key)
        if value is None or value == "":
            continue
        try:
            read = _cell(key, value.strip() if isinstance(value, str) else value, words=words)
        except UsageError as err:
            problems.append(err.message)
            continue
        if read is not None:
            values[key] = read
    return values


def _cell(key: str, value: Any, *, words: bool) -> Any:
    """One request cell as the value it stands for (None: blank, the default)."""
    if key in ("duration", "seed"):
        return _duration(value)
    if key == "callback_url" and not isinstance(value, str):
        raise UsageError(f"'callback_url' must be text, not {_json_type(value)}")
    if key in ("generate_audio", "prompt_extend") and words and isinstance(value, str):
        if not value:
            return None
        if value.lower() not in _TRUE_WORDS + _FALSE_WORDS:
            raise UsageError(f"{key} {value!r} is not allowed; use true or false "
                             "(or yes/no, 1/0)")
        return value.lower() in _TRUE_WORDS
    return value


def _name(value: Any, problems: list[str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append("'name' is missing; every job needs a name (it names the result file)")
        return None
    if not isinstance(value, str):
        problems.append(f"'name' must be text, not {_json_type(value)}")
        return None
    name = value.strip()
    if (len(name) > MAX_NAME_CHARS or name.startswith(".") or any(c in _NAME_FORBIDDEN for c in name)
            or any(ord(c) < 32 for c in name)):
        problems.append(f"name {name!r} cannot be a file name; use at most {MAX_NAME_CHARS} "
                        "letters, digits, spaces and . _ - (not starting with '.')")
        return None
    return name


def _model_of(value: Any) -> str:
    """The row's model where it names one prep knows (its clip count depends on it); else the
    default (a model it does not know is the request's problem, said once there)."""
    try:
        return check_model(value.strip() if isinstance(value, str) else value)
    except UsageError:
        return rules.DEFAULT_MODEL


def _clips(value: Any, base_dir: Path, problems: list[str], *,
           model: str = rules.DEFAULT_MODEL) -> tuple[ClipSpec, ...] | None:
    if value is None:
        problems.append(f"'clips' is missing; give {rules.MIN_CLIPS} to {rules.MAX_CLIPS} clip specs")
        return None
    if isinstance(value, str):
        items: list[Any] = [part.strip() for part in value.split(";") if part.strip()]
    elif isinstance(value, list):
        items = value
    else:
        problems.append(f"'clips' must be a list of clip specs, not {_json_type(value)}")
        return None
    try:
        check_clip_count(len(items), model)
        count_ok = True
    except UsageError as err:
        problems.append(err.message)
        count_ok = False
    specs: list[ClipSpec] = []
    for number, item in enumerate(items, start=1):
        try:
            specs.append(_clip(item, base_dir))
        except UsageError as err:
            problems.append(f"clip {number}: {err.message}")
    if len(specs) != len(items) or not count_ok:
        return None
    return tuple(specs)


def _clip(item: Any, base_dir: Path) -> ClipSpec:
    if isinstance(item, str):
        text = item.strip()
        if not text:
            raise UsageError("an empty clip spec; give a file path")
        spec = parse_clip_spec(text, exists=lambda path: (base_dir / path).exists())
        return ClipSpec(base_dir / spec.path, spec.window, text)
    if isinstance(item, dict):
        unknown = [k for k in item if k not in CLIP_KEYS]
        if unknown:
            raise UsageError(f"unknown key {unknown[0]!r} in a clip object; the keys are "
                             f"{', '.join(CLIP_KEYS)}")
        path = item.get("path")
        if not isinstance(path, str) or not path.strip():
            raise UsageError("a clip object needs a 'path' (text)")
        start = _point(item.get("start"), "start")
        end = _point(item.get("end"), "end")
        if start and end and start.ms is not None and end.ms is not None and end.ms <= start.ms:
            raise UsageError(f"start ({start.text}) must come before end ({end.text})")
        text = path if not (start or end) else (
            f"{path}@{start.text if start else ''}-{end.text if end else ''}")
        return ClipSpec(base_dir / path.strip(), Window(start, end), text)
    raise UsageError(f"a clip must be a clip spec (text) or an object with path/start/end, "
                     f"not {_json_type(item)}")


def _point(value: Any, key: str) -> timecode.Timepoint | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{key!r} must be a timecode or a number of seconds, not {_json_type(value)}")
    text = value if isinstance(value, str) else _seconds_text(value)
    try:
        return timecode.parse(text)
    except ValueError as err:
        raise UsageError(f"{key}: {err}") from err


def _seconds_text(value: int | float) -> str:
    if value < 0:
        return str(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _prompt(value: Any, problems: list[str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append("'prompt' is missing; every job needs a prompt")
        return None
    if not isinstance(value, str):
        problems.append(f"'prompt' must be text, not {_json_type(value)}")
        return None
    return value


def _duration(value: Any) -> Any:
    """A duration cell as a number where it reads as a whole one (CSV text, JSON 6.0); anything
    else is left for the rule (prep.core.request) to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.removeprefix("-").isdigit():
        return int(value)
    return value


def _pick(value: Any, problems: list[str], *, words: bool) -> bool:
    """JSONL: true or false (null: false). CSV: true/false, yes/no, 1/0 in any case; blank: false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if words and isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS or not word:
            return word in _TRUE_WORDS
        problems.append(f"pick {value!r} is not allowed; use true or false (or yes/no, 1/0)")
        return False
    problems.append(f"'pick' must be true or false, not {_json_type(value)}"
                    + (f" ({value!r})" if isinstance(value, str | int | float) else ""))
    return False


def _json_type(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list",
            dict: "an object", str: "text"}.get(type(value), type(value).__name__)
