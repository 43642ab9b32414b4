"""Editors' timelines as batch manifests (EDL, FCP 7 XML, FCPXML, OTIO) and results back out.

Every timeline here is written by hand in its own format; the media are generated, some with a
start timecode (a drop-frame one among them), and found under names with spaces and non-ASCII
letters. A window is checked to the frame: its ends are the first whole milliseconds inside the
event's first frame and the frame after its last.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from prep.errors import ManifestError, ToolMissingError, UsageError
from prep.jobs.timeline import (
    TimelineOptions,
    _url_path,
    expand_timelines,
    is_timeline,
    load_jobs,
    load_timeline,
    parse_map_path,
)
from prep.media.probe import probe, start_timecode
from prep.sandbox import Sandbox
from prep.ui.cli import cli
from tests import mediagen

otio = pytest.importorskip("opentimelineio")
pytestmark = pytest.mark.media
NTSC = Fraction(30000, 1001)


def _ms_text(frame: int, fps: Fraction) -> str:
    exact = Fraction(frame * 1000) / fps
    ms = -(-exact.numerator // exact.denominator)
    return f"{ms // 1000}.{ms % 1000:03d}"


@pytest.fixture(scope="module")
def media() -> dict[str, Path]:
    return {
        # 29.97 fps, drop-frame start timecode 01:00:00;00 (frame 107892)
        "df": mediagen.clip("tl-df", seconds=8, size="160x90", rate="30000/1001", suffix=".mov",
                            extra=["-timecode", "01:00:00;00"]),
        # 25 fps, start timecode 10:00:00:00
        "tc25": mediagen.clip("tl-25", seconds=8, size="160x90", rate="25",
                              extra=["-timecode", "10:00:00:00"]),
        # 24 fps, no timecode track
        "plain": mediagen.clip("tl-plain", seconds=6, size="160x90", rate="24"),
    }


def _link(folder: Path, name: str, target: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.symlink_to(target)
    return path


def test_media_start_timecode(media: dict[str, Path]) -> None:
    assert start_timecode(media["df"]) == "01:00:00;00"
    assert start_timecode(media["tc25"]) == "10:00:00:00"
    assert start_timecode(media["plain"]) is None


# -- EDL (CMX 3600), drop-frame ---------------------------------------------------------------------

DF_EDL = """TITLE: Selects DF
FCM: DROP FRAME

001  AX       V     C        01:00:01;00 01:00:03;15 00:00:00;00 00:00:02;15
* FROM CLIP NAME: shot é 1.mov
* COMMENT: a slow push on her face
002  AX       V     C        01:00:04;02 01:00:06;20 00:00:10;00 00:00:12;18
* FROM CLIP NAME: shot é 1.mov
003  BL       V     C        00:00:00:00 00:00:01:00 00:00:12;18 00:00:13;18
"""


def _df_edl(tmp_path: Path, media: dict[str, Path]) -> Path:
    _link(tmp_path / "rushes of day 1", "shot é 1.mov", media["df"])
    edl = tmp_path / "cut" / "selects.edl"
    edl.parent.mkdir()
    edl.write_text(DF_EDL, encoding="utf-8")
    return edl


def test_drop_frame_edl_becomes_frame_exact_jobs(tmp_path: Path, media: dict[str, Path]) -> None:
    edl = _df_edl(tmp_path, media)
    notes: list[str] = []
    manifest = load_timeline(edl, TimelineOptions(media_dirs=(tmp_path / "rushes of day 1",),
                                                  prompt="a person turns", on_note=notes.append))
    assert manifest.problems == ()
    assert [j.name for j in manifest.jobs] == ["001 shot é 1", "002 shot é 1"]
    one, two = manifest.jobs
    # 01:00:01;00 DF is frame 107922, the media starts at 107892: frames 30 to 105.
    assert (one.clips[0].window.start.text, one.clips[0].window.end.text) == (  # type: ignore[union-attr]
        _ms_text(30, NTSC), _ms_text(105, NTSC))
    # 01:00:04;02: minute 60 drops no frame numbers (a tenth minute), so 4 s 2 f are frame 122
    assert (two.clips[0].window.start.text, two.clips[0].window.end.text) == (  # type: ignore[union-attr]
        _ms_text(122, NTSC), _ms_text(200, NTSC))
    assert one.clips[0].path.name == "shot é 1.mov"
    assert one.request.prompt == "a slow push on her face" and two.request.prompt == "a person turns"
    assert any("event 3" in n and "black" in n for n in notes)
    assert manifest.timeline is not None
    assert manifest.timeline["jobs"]["002 shot é 1"]["start_s"] == pytest.approx(300 * 1001 / 30000)


def test_edl_prices_equal_the_same_windows_typed_by_hand(tmp_path: Path,
                                                         media: dict[str, Path]) -> None:
    edl = _df_edl(tmp_path, media)
    runner = CliRunner()
    timeline = runner.invoke(cli, ["batch", str(edl), "--dry-run", "--json", "--no-check",
                                   "--prompt", "x", "--media", str(tmp_path / "rushes of day 1")])
    assert timeline.exit_code == 0, timeline.stderr
    rows = [{"name": "a", "prompt": "x", "clips": [{"path": str(tmp_path / "rushes of day 1" /
                                                             "shot é 1.mov"),
                                                    "start": _ms_text(s, NTSC),
                                                    "end": _ms_text(e, NTSC)}]}
            for s, e in ((30, 105), (122, 200))]
    rows[1]["name"] = "b"
    jsonl = tmp_path / "same.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    typed = runner.invoke(cli, ["batch", str(jsonl), "--dry-run", "--json", "--no-check"])
    assert typed.exit_code == 0, typed.stderr
    got, want = json.loads(timeline.stdout), json.loads(typed.stdout)
    assert [j["credits"] for j in got["jobs"]] == [j["credits"] for j in want["jobs"]]
    assert got["total"] == want["total"]


def test_missing_and_ambiguous_media_are_listed_before_anything_runs(
        tmp_path: Path, media: dict[str, Path]) -> None:
    _link(tmp_path / "a", "take.mov", media["df"])
    _link(tmp_path / "b", "take.mov", media["df"])
    edl = tmp_path / "cut.edl"
    edl.write_text(
        "TITLE: t\nFCM: DROP FRAME\n\n"
        "001  AX       V     C        01:00:01;00 01:00:03;15 00:00:00;00 00:00:02;15\n"
        "* FROM CLIP NAME: ghost.mov\n"
        "002  AX       V     C        01:00:01;00 01:00:03;15 00:00:02;15 00:00:05;00\n"
        "* FROM CLIP NAME: take.mov\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["batch", str(edl), "--dry-run", "--no-check", "--prompt", "x"])
    assert result.exit_code == 2
    assert "event 1: no media found" in result.stderr and "'ghost.mov'" in result.stderr
    assert str(tmp_path) in result.stderr
    assert "event 2: 'take.mov' is ambiguous" in result.stderr
    assert "2 problems" in result.stderr


def test_estimate_and_prepare_take_a_timeline(tmp_path: Path, media: dict[str, Path]) -> None:
    edl = _df_edl(tmp_path, media)
    runner = CliRunner()
    est = runner.invoke(cli, ["estimate", str(edl), "--json", "--media",
                              str(tmp_path / "rushes of day 1")])
    assert est.exit_code == 0, est.stderr
    clips = json.loads(est.stdout)["clips"]
    assert [c["duration_s"] for c in clips] == [pytest.approx(2.502, abs=0.002),
                                                pytest.approx(2.602, abs=0.002)]
    dry = runner.invoke(cli, ["prepare", str(edl), "-o", str(tmp_path / "ready"), "--dry-run",
                              "--json", "--media", str(tmp_path / "rushes of day 1")])
    assert dry.exit_code == 0, dry.stderr
    assert len(json.loads(dry.stdout)) == 2
    lost = runner.invoke(cli, ["estimate", str(edl)])
    assert lost.exit_code == 2 and "no media found" in lost.stderr


# -- FCP 7 XML (Premiere, Resolve) --------------------------------------------------------------------

FCP7 = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4">
  <sequence id="seq1">
    <name>Premiere selects</name>
    <duration>200</duration>
    <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
    <media>
      <video>
        <track>
          <clipitem id="ci1">
            <name>take two</name>
            <duration>200</duration>
            <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
            <start>0</start>
            <end>75</end>
            <in>25</in>
            <out>100</out>
            <file id="f1">
              <name>take two é.mp4</name>
              <pathurl>file://localhost/C:/Footage/Day%201/take%20two%20%C3%A9.mp4</pathurl>
              <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
              <duration>200</duration>
              <timecode><rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
                <string>10:00:00:00</string><frame>900000</frame><displayformat>NDF</displayformat>
              </timecode>
            </file>
            <comments><mastercomment1>wide and warm</mastercomment1></comments>
          </clipitem>
          <clipitem id="ci2">
            <name>plain</name>
            <duration>144</duration>
            <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
            <start>100</start>
            <end>160</end>
            <in>10</in>
            <out>70</out>
            <file id="f2">
              <name>plain.mp4</name>
              <pathurl>file://localhost/C:/Footage/Day%201/plain.mp4</pathurl>
              <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
              <duration>144</duration>
            </file>
            <marker><name>note</name><comment>a dog runs</comment><in>0</in><out>-1</out></marker>
          </clipitem>
        </track>
      </video>
    </media>
  </sequence>
</xmeml>
"""


def test_fcp7_xml_relinks_windows_paths_with_map_path(tmp_path: Path,
                                                      media: dict[str, Path]) -> None:
    footage = tmp_path / "mnt" / "footage"
    _link(footage / "Day 1", "take two é.mp4", media["tc25"])
    _link(footage / "Day 1", "plain.mp4", media["plain"])
    xml = tmp_path / "edit" / "selects.xml"
    xml.parent.mkdir()
    xml.write_text(FCP7, encoding="utf-8")
    options = TimelineOptions(path_maps=(parse_map_path(f"C:\\Footage={footage}"),))
    manifest = load_timeline(xml, options)
    assert manifest.problems == ()
    one, two = manifest.jobs
    assert one.clips[0].path == (footage / "Day 1" / "take two é.mp4")
    # in 25, out 100 at 25 fps from the file's own 10:00:00:00
    assert (one.clips[0].window.start.text, one.clips[0].window.end.text) == ("1.000", "4.000")  # type: ignore[union-attr]
    # plain.mp4 is 24 fps with no timecode: sequence frames 10 and 70 (at 25) are 0.4 s and 2.8 s,
    # the media's frames 10 (9.6 rounded) and 67 (67.2)
    assert (two.clips[0].window.start.text, two.clips[0].window.end.text) == (  # type: ignore[union-attr]
        _ms_text(10, Fraction(24)), _ms_text(67, Fraction(24)))
    assert one.request.prompt == "wide and warm" and two.request.prompt == "a dog runs"
    unmapped = load_timeline(xml, TimelineOptions())
    assert {p.line for p in unmapped.problems} == {1, 2}
    assert "C:/Footage/Day 1/take two é.mp4" in unmapped.problems[0].message


# -- FCPXML (Final Cut Pro, Resolve) ----------------------------------------------------------------

FCPXML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.8">
  <resources>
    <format id="r1" name="FFVideoFormat1080p25" frameDuration="100/2500s" width="1920" height="1080"/>
    <asset id="r2" name="take two é" start="36000s" duration="8s" hasVideo="1" format="r1"
           hasAudio="1" src="file:///Volumes/Rushes/take%20two%20%C3%A9.mp4"/>
  </resources>
  <library>
    <event name="Selects">
      <project name="FCP selects">
        <sequence format="r1" tcStart="0s" tcFormat="NDF" duration="6s">
          <spine>
            <asset-clip ref="r2" offset="0s" name="take two é" start="36001s" duration="3s"
                        format="r1" tcFormat="NDF"/>
            <gap name="Gap" offset="3s" start="3600s" duration="1s"/>
            <asset-clip ref="r2" offset="4s" name="take two é" start="36004s" duration="2s"
                        format="r1" tcFormat="NDF">
              <marker start="36004s" duration="1/25s" value="the hands, close"/>
            </asset-clip>
          </spine>
        </sequence>
      </project>
    </event>
  </library>
</fcpxml>
"""


@pytest.mark.parametrize("bundle", [False, True])
def test_fcpxml_relinks_by_name_under_the_timeline_folder(tmp_path: Path, media: dict[str, Path],
                                                          bundle: bool) -> None:
    _link(tmp_path / "media", "take two é.mp4", media["tc25"])
    if bundle:
        path = tmp_path / "Selects.fcpxmld"
        path.mkdir()
        (path / "Info.fcpxml").write_text(FCPXML, encoding="utf-8")
    else:
        path = tmp_path / "selects.fcpxml"
        path.write_text(FCPXML, encoding="utf-8")
    manifest = load_jobs(path, TimelineOptions(prompt="x"))
    assert manifest.problems == ()
    windows = [(j.clips[0].window.start.text, j.clips[0].window.end.text)  # type: ignore[union-attr]
               for j in manifest.jobs]
    assert windows == [("1.000", "4.000"), ("4.000", "6.000")]
    assert manifest.jobs[1].request.prompt == "the hands, close"
    assert manifest.timeline is not None
    assert manifest.timeline["jobs"][manifest.jobs[1].name]["start_s"] == pytest.approx(4.0)


NTSC_FCPXML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.9">
  <resources>
    <format id="r1" name="FFVideoFormat1080p2997" frameDuration="1001/30000s" width="1920" height="1080"/>
    <asset id="r2" name="ntsc shot" start="107999892/30000s" duration="240240/30000s" hasVideo="1"
           format="r1" hasAudio="1">
      <media-rep kind="original-media" src="file:///Users/ed/Footage/ntsc%20shot.mov"/>
    </asset>
  </resources>
  <library>
    <event name="Selects">
      <project name="NTSC selects">
        <sequence format="r1" tcStart="0s" tcFormat="DF" duration="165165/30000s">
          <spine>
            <asset-clip ref="r2" offset="0s" name="ntsc shot" start="108029922/30000s"
                        duration="75075/30000s" format="r1" tcFormat="DF"/>
            <asset-clip ref="r2" offset="75075/30000s" name="ntsc shot" start="108122014/30000s"
                        duration="90090/30000s" format="r1" tcFormat="DF"/>
          </spine>
        </sequence>
      </project>
    </event>
  </library>
</fcpxml>
"""


def test_fcpxml_at_29_97_is_frame_exact(tmp_path: Path, media: dict[str, Path]) -> None:
    # The adapter alone reads 29.97 fps as 29 and truncates; prep's read keeps every frame.
    _link(tmp_path / "Footage", "ntsc shot.mov", media["df"])
    path = tmp_path / "ntsc.fcpxml"
    path.write_text(NTSC_FCPXML, encoding="utf-8")
    manifest = load_timeline(path, TimelineOptions(prompt="x"))
    assert manifest.problems == ()
    windows = [(j.clips[0].window.start.text, j.clips[0].window.end.text)  # type: ignore[union-attr]
               for j in manifest.jobs]
    # media from frame 107892 (01:00:00;00): events at 107922 (+30) for 75 frames, 108014 (+122)
    # for 90
    assert windows == [(_ms_text(30, NTSC), _ms_text(105, NTSC)),
                       (_ms_text(122, NTSC), _ms_text(212, NTSC))]
    assert manifest.timeline is not None
    assert manifest.timeline["jobs"][manifest.jobs[1].name]["start_s"] == pytest.approx(75 * 1001 / 30000)
    # The adapter is as it was after the read.
    module = otio.adapters.from_name("fcpx_xml").module()
    assert module.to_rational_time("1001/30000s", 29).rate == 29


# -- OTIO: skipped and refused events, grouping -------------------------------------------------------


def _rt(value: float, rate: float) -> Any:
    return otio.opentime.RationalTime(value, rate)


def _otio_file(tmp_path: Path, media: dict[str, Path]) -> Path:
    shot = _link(tmp_path / "my media", "shot ü.mov", media["df"])
    rate = 30000 / 1001
    available = otio.opentime.TimeRange(_rt(107892, rate), _rt(240, rate))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for index, (start, length) in enumerate(((107892 + 15, 75), (107892 + 90, 90), (107892, 60))):
        ref = otio.schema.ExternalReference(target_url=shot.as_uri(), available_range=available)
        clip = otio.schema.Clip(name=f"shot {index}", media_reference=ref,
                                source_range=otio.opentime.TimeRange(_rt(start, rate),
                                                                     _rt(length, rate)))
        if index == 2:
            clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
        track.append(clip)
        if index == 0:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                _rt(0, rate), _rt(30, rate))))
    title = otio.schema.Clip(name="Title", media_reference=otio.schema.GeneratorReference(
        generator_kind="title"), source_range=otio.opentime.TimeRange(_rt(0, rate), _rt(30, rate)))
    track.append(title)
    timeline = otio.schema.Timeline(name="OTIO selects")
    timeline.tracks.append(track)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    timeline.tracks.append(audio)
    path = tmp_path / "selects.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_otio_events_skipped_and_refused_with_notes(tmp_path: Path, media: dict[str, Path]) -> None:
    path = _otio_file(tmp_path, media)
    notes: list[str] = []
    manifest = load_timeline(path, TimelineOptions(prompt="p", on_note=notes.append))
    assert manifest.problems == ()
    assert [(j.clips[0].window.start.text, j.clips[0].window.end.text)  # type: ignore[union-attr]
            for j in manifest.jobs] == [(_ms_text(15, NTSC), _ms_text(90, NTSC)),
                                        (_ms_text(90, NTSC), _ms_text(180, NTSC))]
    assert any("event 3" in n and "200% speed" in n and "refused" in n for n in notes)
    assert any("event 4" in n and "title" in n for n in notes)
    grouped = load_timeline(path, TimelineOptions(prompt="p", group="track"))
    assert grouped.problems == () and len(grouped.jobs) == 1
    assert len(grouped.jobs[0].clips) == 2 and grouped.jobs[0].name == "track 1"


def test_track_of_more_than_three_events_is_a_problem(tmp_path: Path,
                                                      media: dict[str, Path]) -> None:
    _link(tmp_path, "s.mov", media["df"])
    events = "".join(
        f"00{i}  AX       V     C        01:00:0{i};00 01:00:0{i + 1};00 00:00:0{i};00 "
        f"00:00:0{i + 1};00\n* FROM CLIP NAME: s.mov\n" for i in range(1, 5))
    edl = tmp_path / "four.edl"
    edl.write_text("TITLE: four\nFCM: DROP FRAME\n\n" + events, encoding="utf-8")
    manifest = load_timeline(edl, TimelineOptions(prompt="p", group="track"))
    assert manifest.jobs == ()
    assert "a job takes 1 to 3 reference clips, not 4" in manifest.problems[0].message


# -- bad input ----------------------------------------------------------------------------------------


def test_damaged_timeline_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.fcpxml"
    bad.write_text("<fcpxml version='1.8'><resources>", encoding="utf-8")
    result = CliRunner().invoke(cli, ["batch", str(bad), "--dry-run", "--prompt", "x"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "broken.fcpxml" in lines[0] and "cannot read" not in lines[0]
    with pytest.raises(UsageError, match="no such timeline"):
        load_timeline(tmp_path / "nowhere.edl", TimelineOptions())


def test_without_the_extra_a_timeline_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edl = tmp_path / "cut.edl"
    edl.write_text(DF_EDL, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "opentimelineio", None)
    with pytest.raises(ToolMissingError) as caught:
        load_jobs(edl)
    assert "timeline extra" in caught.value.message
    assert "evolink-prep[timeline]" in caught.value.hint
    result = CliRunner().invoke(cli, ["batch", str(edl), "--dry-run"])
    assert "evolink-prep[timeline]" in result.stderr and result.exit_code == 6


@pytest.mark.parametrize(("url", "maps", "path"), [
    ("file:///Users/ed/My%20Footage/a%C3%A9.mov", (), "/Users/ed/My Footage/aé.mov"),
    ("file://localhost/C%3a/Footage/a.mov", (("C:\\Footage", "/mnt/f"),), "/mnt/f/a.mov"),
    ("file:///C:/Footage/a.mov", (("c:/footage/", "/mnt/f"),), "/mnt/f/a.mov"),
    ("D:\\Rushes\\Day 1\\a.mov", (("D:\\Rushes", "/r"),), "/r/Day 1/a.mov"),
    ("/Volumes/Media/a.mov", (("/Volumes/Media", "/m"),), "/m/a.mov"),
    ("/Volumes/MediaX/a.mov", (("/Volumes/Media", "/m"),), "/Volumes/MediaX/a.mov"),
    ("https://example.test/a.mov", (), ""),
])
def test_media_paths_from_urls(url: str, maps: tuple[tuple[str, str], ...], path: str) -> None:
    assert _url_path(url, maps) == path


def test_map_path_needs_an_equals_sign() -> None:
    with pytest.raises(UsageError, match="FROM=TO"):
        parse_map_path("C:/footage")
    assert is_timeline("a.EDL") and is_timeline("b.fcpxmld") and not is_timeline("c.csv")


def test_expand_leaves_other_clips_alone(tmp_path: Path, media: dict[str, Path]) -> None:
    edl = _df_edl(tmp_path, media)
    specs = expand_timelines([*load_jobs(edl, TimelineOptions(
        prompt="p", media_dirs=(tmp_path / "rushes of day 1",))).jobs[0].clips],
        TimelineOptions())
    assert len(specs) == 1
    with pytest.raises(ManifestError):
        from prep.media.clips import parse_clip_spec
        expand_timelines([parse_clip_spec(str(edl))], TimelineOptions())


# -- a batch run against the sandbox, and its results back as a timeline --------------------------------


def test_batch_from_edl_runs_and_exports(tmp_path: Path, media: dict[str, Path],
                                          sandbox: Sandbox) -> None:
    edl = _df_edl(tmp_path, media)
    out = tmp_path / "out"
    runner = CliRunner()
    env = sandbox.env()
    run = runner.invoke(cli, ["batch", str(edl), "-o", str(out), "--yes", "--no-check",
                              "--no-check-credits", "--prompt", "a person turns",
                              "--media", str(tmp_path / "rushes of day 1"), "--json"], env=env)
    assert run.exit_code == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["counts"]["done"] == 2
    exported = tmp_path / "back" / "results.otio"
    result = runner.invoke(cli, ["batch", "export", str(out), "-o", str(exported), "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    from prep.ui.commands.schema import load_schema

    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(load_schema("batch-export")).validate(answer)
    placed = answer["clips"]
    assert [c["start_s"] for c in placed] == [0.0, pytest.approx(300 * 1001 / 30000, abs=1e-3)]
    timeline = otio.adapters.read_from_file(str(exported))
    clips = list(timeline.find_clips())
    assert [c.name for c in clips] == ["001 shot é 1", "002 shot é 1"]
    jobs = {j["name"]: j for j in summary["jobs"]}
    for clip in clips:
        path = Path(otio.url_utils.filepath_from_url(clip.media_reference.target_url))
        assert path.is_file() and path == Path(jobs[clip.name]["result_path"]).resolve()
        info = probe(path)
        assert clip.source_range.duration.to_seconds() == pytest.approx(info.duration_ms / 1000,
                                                                          abs=0.05)
        facts = clip.metadata["prep"]
        assert facts["model"] and facts["task_id"] == jobs[clip.name]["task_id"]
        assert facts["prompt"] in ("a slow push on her face", "a person turns")
        assert float(facts["credits"]) == pytest.approx(jobs[clip.name]["credits_reserved"])
    # The second clip keeps its event's place: 10;00 on the record side.
    assert clips[1].range_in_parent().start_time.to_seconds() == pytest.approx(
        300 * 1001 / 30000, abs=0.05)
    for suffix in (".edl", ".xml", ".fcpxml"):
        other = tmp_path / "back" / f"results{suffix}"
        done = runner.invoke(cli, ["batch", "export", str(out), "-o", str(other)])
        assert done.exit_code == 0, done.stderr
        again = otio.adapters.read_from_file(str(other), **({"rate": 24} if suffix == ".edl"
                                                            else {}))
        if isinstance(again, otio.schema.SerializableCollection):
            again = next(iter(again.find_children(descended_from_type=otio.schema.Timeline)))
        assert len(list(again.find_clips())) == 2
    wrong = runner.invoke(cli, ["batch", "export", str(out), "-o", str(tmp_path / "r.mov")])
    assert wrong.exit_code == 2 and ".otio" in wrong.stderr


def test_studio_opens_a_timeline_as_its_events_clips(tmp_path: Path, media: dict[str, Path]) -> None:
    from prep.ui.commands.studio import _timeline_events

    edl = _df_edl(tmp_path, media)
    folder = tmp_path / "other"
    folder.mkdir()
    roots, events = _timeline_events([folder, edl], (str(tmp_path / "rushes of day 1"),), ())
    shot = tmp_path / "rushes of day 1" / "shot é 1.mov"
    assert roots == [folder, shot]
    assert [(e.number, e.path, e.start_ms, e.end_ms) for e in events] == [
        (1, shot, 1001, 3504), (2, shot, 4071, 6674)]
    with pytest.raises(ManifestError):
        _timeline_events([edl], (), ())  # the media is not under the timeline's folder


def test_an_event_shorter_than_the_minimum_is_a_problem_like_a_short_row(
        tmp_path: Path, media: dict[str, Path]) -> None:
    _link(tmp_path, "s.mov", media["df"])
    edl = tmp_path / "short.edl"
    edl.write_text(
        "TITLE: short\nFCM: DROP FRAME\n\n"
        "001  AX       V     C        01:00:01;00 01:00:03;15 00:00:00;00 00:00:02;15\n"
        "* FROM CLIP NAME: s.mov\n"
        "002  AX       V     C        01:00:04;00 01:00:05;00 00:00:02;15 00:00:03;15\n"
        "* FROM CLIP NAME: s.mov\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["batch", str(edl), "--dry-run", "--no-check", "--prompt", "x"])
    assert result.exit_code == 3, result.stderr
    assert "short.edl:2 (job '002 s')" in result.stderr and "needs at least 2.0 s" in result.stderr
    assert "short.edl:1" not in result.stderr
