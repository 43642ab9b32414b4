"""Manifest parsing and validation: every kind of row error, in CSV and JSONL, all reported at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prep.core import rules
from prep.core.request import check_callback_url
from prep.errors import UsageError
from prep.jobs.manifest import (
    ManifestError,
    detect_format,
    load_manifest,
    parse_manifest,
)

ROOT = Path(__file__).resolve().parent.parent
HEADER = "name,clips,prompt,duration,quality,aspect_ratio,shot_type,callback_url\n"


def _csv(text: str, base: Path = Path("/footage")) -> tuple[list[str], list[tuple[int, str]]]:
    m = parse_manifest(text, fmt="csv", base_dir=base, source="m.csv")
    return [j.name for j in m.jobs], [(p.line, p.message) for p in m.problems]


def _jsonl(rows: list[object], base: Path = Path("/footage")) -> tuple[list[str], list[tuple[int, str]]]:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)
    m = parse_manifest(text, fmt="jsonl", base_dir=base, source="m.jsonl")
    return [j.name for j in m.jobs], [(p.line, p.message) for p in m.problems]


def test_csv_full_row_and_defaults() -> None:
    text = HEADER + (
        'a,take.mov@1:05-1:20;b.mp4,"Hello, world",8,1080p,9:16,multi,https://example.com/h\n'
        "b,/abs/c.mov,Just a prompt,,,,,\n"
    )
    m = parse_manifest(text, fmt="csv", base_dir=Path("/footage"), source="m.csv")
    assert not m.problems
    a, b = m.jobs
    ra, rb = a.request, b.request
    assert (a.line, a.name, ra.prompt, ra.duration_s, ra.quality) == (2, "a", "Hello, world", 8, "1080p")
    assert (ra.aspect_ratio, ra.shot_type, ra.callback_url) == ("9:16", "multi", "https://example.com/h")
    assert [c.path for c in a.clips] == [Path("/footage/take.mov"), Path("/footage/b.mp4")]
    assert a.clips[0].window.start is not None and a.clips[0].window.start.ms == 65_000
    assert a.clips[0].window.end is not None and a.clips[0].window.end.ms == 80_000
    assert b.clips[0].path == Path("/abs/c.mov")  # absolute paths stay absolute
    assert (rb.duration_s, rb.quality, rb.aspect_ratio, rb.shot_type, rb.callback_url) == (
        rules.DEFAULT_OUTPUT_S, rules.DEFAULT_QUALITY, rules.DEFAULT_ASPECT_RATIO,
        rules.DEFAULT_SHOT_TYPE, None)


def test_jsonl_clip_objects_and_specs() -> None:
    m = parse_manifest(
        json.dumps({"name": "j", "prompt": "p", "clips": [
            "x.mov@2-", {"path": "y.mp4", "start": 1.5, "end": "0:04"}, {"path": "z.mov"}]}),
        fmt="jsonl", base_dir=Path("/f"))
    assert not m.problems
    clips = m.jobs[0].clips
    assert [c.path for c in clips] == [Path("/f/x.mov"), Path("/f/y.mp4"), Path("/f/z.mov")]
    assert clips[1].window.start is not None and clips[1].window.start.ms == 1_500
    assert clips[1].window.end is not None and clips[1].window.end.ms == 4_000
    assert clips[2].window.is_open
    assert m.jobs[0].as_dict()["clips"][1] == {"path": "/f/y.mp4", "start": "1.5", "end": "0:04"}


def test_csv_crlf_bom_quoted_newlines_and_blank_lines() -> None:
    text = HEADER.replace("\n", "\r\n") + '\r\na,x.mov,"two\nlines",,,,,\r\nb,y.mov,p,,,,,\r\n'
    names, problems = _csv(text)
    assert names == ["a", "b"] and not problems


def test_load_manifest_reads_bom_and_resolves_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mov").write_bytes(b"x")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("\ufeff" + HEADER + "a,clips/a.mov,p,,,,,\n", encoding="utf-8")
    m = load_manifest(manifest)
    assert not m.problems
    assert m.jobs[0].clips[0].path == tmp_path / "clips" / "a.mov"


CSV_ERRORS = [
    ("missing-name", ",x.mov,p,,,,,", "'name' is missing"),
    ("no-clips", "n,,p,,,,,", "'clips' is missing"),
    ("four", "n,a.mov;b.mov;c.mov;d.mov,p,,,,,", "a job takes 1 to 3 reference clips, not 4"),
    ("bad-time", "n,a.mov@1:7x-,p,,,,,", "timecode '1:7x' is not understood"),
    ("bad-order", "n,a.mov@10-5,p,,,,,", "must come before END"),
    ("no-prompt", "n,a.mov,,,,,,", "'prompt' is missing"),
    ("long-prompt", f"n,a.mov,{'x' * 1501},,,,,", "1501 characters; the API takes at most 1500"),
    ("duration", "n,a.mov,p,11,,,,", "duration 11 is not allowed"),
    ("duration-float", "n,a.mov,p,4.5,,,,", "duration '4.5' is not allowed"),
    ("quality", "n,a.mov,p,,4k,,,", "quality '4k' is not allowed"),
    ("aspect", "n,a.mov,p,,,21:9,,", "aspect_ratio '21:9' is not allowed"),
    ("shot", "n,a.mov,p,,,,many,", "shot_type 'many' is not allowed"),
    ("callback-http", "n,a.mov,p,,,,,http://example.com/h", "must be an https:// URL"),
    ("callback-private", "n,a.mov,p,,,,,https://192.168.1.4/h", "internal address"),
    ("callback-localhost", "n,a.mov,p,,,,,https://localhost/h", "internal host"),
    ("bad-name", "../evil,a.mov,p,,,,,", "cannot be a file name"),
    ("too-many-cells", "n,a.mov,p,,,,,,extra", "cells but the header has"),
]


@pytest.mark.parametrize(("case", "row", "message"), CSV_ERRORS, ids=[c[0] for c in CSV_ERRORS])
def test_csv_row_errors(case: str, row: str, message: str) -> None:
    names, problems = _csv(HEADER + "ok,a.mov,fine,,,,,\n" + row + "\n")
    assert names == ["ok"]
    assert len(problems) == 1, problems
    assert problems[0][0] == 3
    assert message in problems[0][1]


def test_every_bad_row_is_reported_at_once() -> None:
    # Distinct names, so that no row is also a duplicate.
    body = "".join((f"n{i}," + row[2:] if row.startswith("n,") else row) + "\n"
                   for i, (_, row, _) in enumerate(CSV_ERRORS))
    m = parse_manifest(HEADER + "ok,a.mov,fine,,,,,\n" + body, fmt="csv", base_dir=Path("/f"),
                       source="m.csv")
    assert [j.name for j in m.jobs] == ["ok"]
    assert sorted({p.line for p in m.problems}) == list(range(3, 3 + len(CSV_ERRORS)))
    with pytest.raises(ManifestError) as info:
        m.raise_for_problems()
    assert info.value.exit_code == 2
    assert f"{len(CSV_ERRORS)} problems in {len(CSV_ERRORS)} rows" in info.value.message


def test_csv_header_problems() -> None:
    names, problems = _csv("name,clips,colour\na,x.mov,red\n")
    assert names == []
    messages = [m for _, m in problems]
    assert any("unknown column 'colour'" in m for m in messages)
    assert any("no 'prompt' column" in m for m in messages)
    assert all(line in (1, 2) for line, _ in problems)
    _, dupes = _csv("name,clips,prompt,prompt\na,x.mov,p,q\n")
    assert any("'prompt' appears more than once" in m for _, m in dupes)


def test_duplicate_names_case_insensitive() -> None:
    names, problems = _csv(HEADER + "Intro,a.mov,p,,,,,\nintro,b.mov,p,,,,,\n")
    assert names == ["Intro"]
    assert problems == [(3, "duplicate name 'intro' (first used on line 2); every job needs its own "
                            "name (it names the result file)")]


def test_duplicate_name_reported_even_when_row_has_other_errors() -> None:
    _, problems = _csv(HEADER + "a,a.mov,p,,,,,\na,b.mov,p,99,,,,\n")
    assert [line for line, _ in problems] == [3, 3]


JSONL_ERRORS: list[tuple[str, object, str]] = [
    ("not-json", "{nope", "not valid JSON"),
    ("not-object", "[1, 2]", "must be a JSON object"),
    ("unknown-field", {"name": "n", "clips": ["a.mov"], "prompt": "p", "colour": 1},
     "unknown field 'colour'"),
    ("pick-text", {"name": "n", "clips": ["a.mov"], "prompt": "p", "pick": "yes"},
     "'pick' must be true or false, not text ('yes')"),
    ("pick-number", {"name": "n", "clips": ["a.mov"], "prompt": "p", "pick": 1},
     "'pick' must be true or false, not a number"),
    ("clips-type", {"name": "n", "clips": 3, "prompt": "p"}, "must be a list"),
    ("clip-object-key", {"name": "n", "clips": [{"path": "a.mov", "len": 3}], "prompt": "p"},
     "unknown key 'len'"),
    ("clip-object-path", {"name": "n", "clips": [{"start": 3}], "prompt": "p"}, "needs a 'path'"),
    ("clip-object-order", {"name": "n", "clips": [{"path": "a.mov", "start": 5, "end": 2}],
                           "prompt": "p"}, "must come before end"),
    ("clip-bad-type", {"name": "n", "clips": [7], "prompt": "p"}, "must be a clip spec"),
    ("zero-clips", {"name": "n", "clips": [], "prompt": "p"}, "clips, not 0"),
    ("name-type", {"name": 5, "clips": ["a.mov"], "prompt": "p"}, "'name' must be text"),
    ("prompt-type", {"name": "n", "clips": ["a.mov"], "prompt": ["p"]}, "'prompt' must be text"),
    ("duration-bool", {"name": "n", "clips": ["a.mov"], "prompt": "p", "duration": True},
     "is not allowed"),
    ("duration-low", {"name": "n", "clips": ["a.mov"], "prompt": "p", "duration": 1}, "is not allowed"),
    ("quality", {"name": "n", "clips": ["a.mov"], "prompt": "p", "quality": "480p"}, "quality"),
    ("callback-long", {"name": "n", "clips": ["a.mov"], "prompt": "p",
                       "callback_url": "https://example.com/" + "x" * 2100}, "at most 2048"),
]


@pytest.mark.parametrize(("case", "row", "message"), JSONL_ERRORS, ids=[c[0] for c in JSONL_ERRORS])
def test_jsonl_row_errors(case: str, row: object, message: str) -> None:
    names, problems = _jsonl([{"name": "ok", "clips": ["a.mov"], "prompt": "fine"}, row])
    assert names == ["ok"]
    assert len(problems) == 1, problems
    assert problems[0][0] == 2 and message in problems[0][1]


def test_jsonl_numbers_and_integral_float_duration() -> None:
    names, problems = _jsonl([{"name": "n", "clips": ["a.mov"], "prompt": "p", "duration": 6.0}])
    assert names == ["n"] and not problems


def test_empty_manifest_is_an_error() -> None:
    m = parse_manifest("\n\n", fmt="jsonl", base_dir=Path("/f"))
    assert [p.message for p in m.problems] == ["the manifest has no jobs"]
    m = parse_manifest(HEADER, fmt="csv", base_dir=Path("/f"))
    assert [p.message for p in m.problems] == ["the manifest has no jobs"]


def test_missing_clip_is_a_media_problem_exit_3(tmp_path: Path) -> None:
    (tmp_path / "a.mov").write_bytes(b"x")
    (tmp_path / "folder.mov").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "a,a.mov,p,,,,,\nb,gone.mov,p,,,,,\nc,folder.mov,p,,,,,\n"
                        "d,a.mov,p,77,,,,\n")
    m = load_manifest(manifest)
    assert [j.name for j in m.jobs] == ["a"]
    assert [(p.line, p.exit_code) for p in m.problems] == [(3, 3), (4, 3), (5, 2)]
    assert "gone.mov: no such file" in m.problems[0].message
    assert "is a folder" in m.problems[1].message
    with pytest.raises(ManifestError) as info:
        m.raise_for_problems()
    assert info.value.exit_code == 3  # a missing clip outweighs a usage problem


def test_path_with_at_sign_that_exists_is_a_path(tmp_path: Path) -> None:
    (tmp_path / "take@1-2.mov").write_bytes(b"x")
    m = parse_manifest(HEADER + "a,take@1-2.mov,p,,,,,\n", fmt="csv", base_dir=tmp_path)
    assert m.jobs[0].clips[0].path == tmp_path / "take@1-2.mov"
    assert m.jobs[0].clips[0].window.is_open


def test_unreadable_manifest_is_usage_error(tmp_path: Path) -> None:
    from prep.errors import UsageError

    with pytest.raises(UsageError, match="no such manifest"):
        load_manifest(tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UsageError, match="cannot be read"):
        load_manifest(bad)


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("a.csv", "{", "csv"), ("a.jsonl", "name", "jsonl"), ("a.ndjson", "", "jsonl"),
    ("a.txt", '  {"name": 1}', "jsonl"), ("a.txt", "name,clips", "csv"),
])
def test_detect_format(name: str, text: str, fmt: str) -> None:
    assert detect_format(Path(name), text) == fmt


CALLBACKS = [
    ("https://example.com/hook", True),
    ("https://8.8.8.8/hook", True),
    ("http://example.com/hook", False),
    ("https:///nohost", False),
    ("https://127.0.0.1/h", False),
    ("https://10.1.2.3/h", False),
    ("https://172.20.0.1/h", False),
    ("https://192.168.0.1/h", False),
    ("https://169.254.1.1/h", False),
    ("https://[::1]/h", False),
    ("https://printer.local/h", False),
    ("https://LOCALHOST./h", False),
    # Where the manifest's own copy of the rule used to disagree with generate's, or crash:
    ("https://intranet/cb", False),
    ("https://127.1/x", False),
    ("https://0177.0.0.1/x", False),
    ("https://10.1/x", False),
    ("https://0x7f000001/x", False),
    ("https://2130706433/x", False),
    ("https://[::ffff:127.0.0.1]/x", False),
    ("https://[fe80::1/cb", False),
    ("https://example.com:99999/x", False),
]


@pytest.mark.parametrize(("url", "ok"), CALLBACKS)
def test_manifest_judges_callbacks_exactly_as_generate_does(url: str, ok: bool) -> None:
    """One rule: a row's callback_url is a problem exactly when generate would refuse it."""
    names, problems = _jsonl([{"name": "ok", "clips": ["a.mov"], "prompt": "p"},
                              {"name": "hook", "clips": ["a.mov"], "prompt": "p", "callback_url": url}])
    try:
        check_callback_url(url)
        refused_by_generate = None
    except UsageError as err:
        refused_by_generate = err.message
    assert (refused_by_generate is None) == ok
    if ok:
        assert names == ["ok", "hook"] and not problems
    else:
        assert names == ["ok"]
        assert problems == [(2, refused_by_generate.replace("--callback-url", "callback_url"))]


def test_malformed_callback_is_a_row_problem_not_a_crash() -> None:
    names, problems = _csv(HEADER + "a,a.mov,p,,,,,https://[fe80::1/cb\n")
    assert names == []
    assert len(problems) == 1 and problems[0][0] == 2
    assert "callback_url" in problems[0][1] and "not a valid URL" in problems[0][1]


@pytest.mark.parametrize("name", ["jobs.csv", "jobs.jsonl"])
def test_fixture_manifests_parse(name: str) -> None:
    path = ROOT / "fixtures" / "batch" / name
    m = parse_manifest(path.read_text(), fmt=detect_format(path, ""), base_dir=path.parent)
    assert not m.problems
    assert [j.name for j in m.jobs] == ["intro", "phone-pair", "trio"]


@pytest.mark.parametrize(("name", "lines"), [
    ("bad.csv", [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ("bad.jsonl", [3, 4, 5, 6, 7, 8, 9, 10]),
])
def test_fixture_bad_manifests(name: str, lines: list[int]) -> None:
    """The documented bad examples: every row problem short of file checks, with its line."""
    path = ROOT / "fixtures" / "batch" / name
    m = parse_manifest(path.read_text(), fmt=detect_format(path, ""), base_dir=path.parent)
    assert sorted({p.line for p in m.problems}) == lines


# -- the pick field --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pick.csv", "pick.jsonl"])
def test_fixture_pick_manifests_parse(name: str) -> None:
    path = ROOT / "fixtures" / "batch" / name
    m = parse_manifest(path.read_text(), fmt=detect_format(path, ""), base_dir=path.parent)
    assert not m.problems
    assert [(j.name, j.pick, j.clips_to_pick) for j in m.jobs] == [
        ("talk", True, (0,)), ("talk-pair", True, (0,)), ("no-pick", False, ())]

PICK_HEADER = "name,clips,prompt,pick\n"


@pytest.mark.parametrize(("cell", "expected"), [
    ("true", True), ("TRUE", True), ("Yes", True), ("1", True), (" yes ", True),
    ("false", False), ("No", False), ("0", False), ("", False),
])
def test_csv_pick_words(cell: str, expected: bool) -> None:
    m = parse_manifest(PICK_HEADER + f"a,take.mov,p,{cell}\n", fmt="csv", base_dir=Path("/f"))
    assert not m.problems
    assert m.jobs[0].pick is expected


def test_csv_without_pick_column_is_false() -> None:
    m = parse_manifest("name,clips,prompt\na,take.mov,p\n", fmt="csv", base_dir=Path("/f"))
    assert m.jobs[0].pick is False and m.jobs[0].clips_to_pick == ()


def test_csv_bad_pick_word() -> None:
    names, problems = _csv(PICK_HEADER + "a,take.mov,p,maybe\n")
    assert names == []
    assert problems == [(2, "pick 'maybe' is not allowed; use true or false (or yes/no, 1/0)")]


def test_jsonl_pick_boolean_and_null() -> None:
    m = parse_manifest("\n".join(json.dumps(r) for r in [
        {"name": "a", "clips": ["x.mov"], "prompt": "p", "pick": True},
        {"name": "b", "clips": ["x.mov"], "prompt": "p", "pick": False},
        {"name": "c", "clips": ["x.mov"], "prompt": "p", "pick": None},
    ]), fmt="jsonl", base_dir=Path("/f"))
    assert not m.problems
    assert [j.pick for j in m.jobs] == [True, False, False]
    assert m.jobs[0].as_dict()["pick"] is True


def test_clips_to_pick_are_those_without_a_window() -> None:
    m = parse_manifest(json.dumps({"name": "a", "prompt": "p", "pick": True, "clips": [
        "x.mov", "y.mov@1-5", {"path": "w.mov"}]}), fmt="jsonl", base_dir=Path("/f"))
    assert not m.problems
    assert m.jobs[0].clips_to_pick == (0, 2)
    half_open = parse_manifest(json.dumps({"name": "a", "prompt": "p", "pick": True, "clips": [
        {"path": "z.mov", "start": 2}, "x.mov@-3"]}), fmt="jsonl", base_dir=Path("/f"))
    assert half_open.jobs[0].clips_to_pick == ()
    unpicked = parse_manifest(json.dumps({"name": "a", "prompt": "p", "clips": ["x.mov"]}),
                              fmt="jsonl", base_dir=Path("/f"))
    assert unpicked.jobs[0].clips_to_pick == ()


def test_jsonl_line_nested_too_deeply_is_a_row_problem() -> None:
    """It was an internal error (exit 1): Python's parser gives up with RecursionError."""
    deep = '{"name": "deep", "clips": ' + "[" * 100_000 + "]" * 100_000 + ', "prompt": "p"}'
    names, problems = _jsonl([{"name": "ok", "clips": ["a.mov"], "prompt": "fine"}, deep])
    assert names == ["ok"]
    assert problems == [(2, "not valid JSON (nested too deeply)")]
