"""`prep studio` at the HTTP level: the token, the library, Range, the bill (the CLI's own), and
jobs that are the engine's (journaled, followed rather than started twice). The page itself is
driven in a real browser in test_studio_browser.py."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mediagen
import pytest
from click.testing import CliRunner

from prep.errors import Interrupted
from prep.jobs.estimate import estimate
from prep.sandbox import Sandbox
from prep.settings import Settings, load_settings
from prep.ui.cli import cli
from prep.ui.studio import RunningStudio, Studio, run_in_thread
from prep.ui.studio.jobs import Jobs

# The studio's own tests: a clip's analysis is made once a process and reused by the next
# studio (tests/analyses.py); what the studio does with it is what is tested.
pytestmark = [pytest.mark.media, pytest.mark.usefixtures("reuse_analyses")]

PROMPT = "A person looks at the camera and waves"


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a 6 s clip, a 1.5 s one (too short for the API) and a text file."""
    folder = tmp_path_factory.mktemp("footage")
    # Copies: the studio lists and serves only files inside its folders, not links out of them.
    shutil.copyfile(mediagen.clip("studio-take", seconds=6, size="320x180", rate="25"),
                    folder / "take.mp4")
    shutil.copyfile(mediagen.clip("studio-blip", seconds=1.5, size="320x180", rate="25"),
                    folder / "blip.mp4")
    (folder / "notes.txt").write_text("not a video")
    return folder


def settings_for(sb: Sandbox, tmp_path: Path) -> Settings:
    return load_settings({"api_key": sb.key, "base_url": sb.url, "files_url": sb.files_url,
                          "cache_dir": str(tmp_path / "cache")})


@pytest.fixture()
def studio(sandbox: Sandbox, footage: Path, tmp_path: Path) -> Iterator[RunningStudio]:
    running = run_in_thread(Studio([footage], tmp_path / "out", settings_for(sandbox, tmp_path)))
    try:
        yield running
    finally:
        running.stop()


def client(running: RunningStudio, *, token: bool = True) -> httpx.Client:
    headers = {"X-Prep-Token": running.studio.token} if token else {}
    return httpx.Client(base_url=running.base, headers=headers, timeout=60, trust_env=False)


def clip_id(http: httpx.Client, name: str) -> str:
    clips = http.get("/api/clips").json()["clips"]
    return str(next(c["id"] for c in clips if c["name"] == name))


def job_body(cid: str, **more: Any) -> dict[str, Any]:
    return {"clips": [{"id": cid, "start_ms": 1000, "end_ms": 5000}], "prompt": PROMPT, **more}


def events(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    """Every event of a job until it finished, read as the page's EventSource reads them."""
    seen = []
    with http.stream("GET", f"/api/jobs/{name}/events") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen


# -- the token and the host ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/static/studio.js", "/api/state", "/api/clips",
                                  "/api/jobs", "/favicon.ico"])
def test_every_request_without_the_token_is_refused(studio: RunningStudio, path: str) -> None:
    with client(studio, token=False) as http:
        assert http.get(path).status_code == 403
        assert http.get(path, params={"token": "wrong"}).status_code == 403
        assert http.get(path, headers={"X-Prep-Token": studio.studio.token[:-1]}).status_code == 403
    assert studio.url.startswith(f"http://127.0.0.1:{studio.port}/?token=")


def test_the_token_in_the_url_opens_the_page(studio: RunningStudio) -> None:
    with client(studio, token=False) as http:
        page = http.get("/", params={"token": studio.studio.token})
        assert page.status_code == 200
        assert 'data-testid="generate"' in page.text
        assert "content-security-policy" in page.headers
        # The page loads nothing from elsewhere: its script and style come from the studio.
        assert "http" not in page.text.replace("http-equiv", "")
        script = http.get("/static/studio.js", params={"token": studio.studio.token})
        assert script.status_code == 200 and "EventSource" in script.text


def test_another_host_name_is_refused(studio: RunningStudio) -> None:
    with client(studio) as http:
        assert http.get("/api/state", headers={"Host": "evil.example"}).status_code == 421


def test_the_api_key_never_reaches_the_page(studio: RunningStudio, sandbox: Sandbox) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        answers = [http.get("/", params={"token": studio.studio.token}), http.get("/api/state"),
                   http.get("/api/clips"), http.post("/api/estimate", json=job_body(cid)),
                   http.get("/api/jobs")]
        for answer in answers:
            assert sandbox.key not in answer.text
        assert http.get("/api/state").json()["api_key"] == "set"


# -- the library -------------------------------------------------------------------------------

def test_library_lists_the_videos_with_their_verdicts(studio: RunningStudio) -> None:
    with client(studio) as http:
        clips = {c["name"]: c for c in http.get("/api/clips").json()["clips"]}
    assert set(clips) == {"take.mp4", "blip.mp4"}
    take, blip = clips["take.mp4"], clips["blip.mp4"]
    assert take["compliant"] and take["duration_ms"] == 6000 and take["problems"] == []
    assert (take["fps_num"], take["fps_den"]) == (25, 1)
    assert not blip["compliant"] and blip["too_short"]
    # The shortest stream counts (its audio ends a frame early): the length is said with the rule.
    assert re.fullmatch(r"it is 1\.\d+ s long; the API needs at least 2\.0 s", blip["problems"][0])
    assert take["check"] is None


def test_a_missing_clip_is_404(studio: RunningStudio) -> None:
    with client(studio) as http:
        assert http.get("/api/clips/nothere/analysis").status_code == 404
        assert http.get("/api/clips/nothere/media").status_code == 404


def test_media_is_served_with_range(studio: RunningStudio, footage: Path) -> None:
    size = (footage / "take.mp4").stat().st_size
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        part = http.get(f"/api/clips/{cid}/media", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        assert len(part.content) == 100
        assert part.content == (footage / "take.mp4").read_bytes()[100:200]


def test_pictures_and_the_analysis_of_a_clip(studio: RunningStudio) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        for kind in ("poster", "strip"):
            picture = http.get(f"/api/clips/{cid}/{kind}.jpg")
            assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        data = http.get(f"/api/clips/{cid}/analysis", params={"clips_in_job": 2}).json()
    assert data["duration_ms"] == 6000 and data["shots"]
    pick = data["pick"]
    assert pick["clips_in_job"] == 2 and 0 <= pick["start_ms"] < pick["end_ms"] <= 6000
    assert pick["clip_spec"].startswith("take.mp4@")
    assert not pick["usable"] and pick["warnings"]  # a test pattern has no face and no speech


def test_a_stopped_studio_stops_the_analysis_it_was_making(sandbox: Sandbox, footage: Path,
                                                          tmp_path: Path) -> None:
    """An analysis still decoding when the studio stops gives up at its next frame (its ffmpegs
    stopped) instead of running on for nobody; the clip then answers that the studio stopped."""
    running = run_in_thread(Studio([footage], tmp_path / "out", settings_for(sandbox, tmp_path)))
    library = running.studio.library
    [take] = [c for c in library.scan() if c.path.name == "take.mp4"]
    running.stop()
    started = time.monotonic()
    with pytest.raises(Interrupted, match="studio stopped"):
        library.analysis(take)
    assert time.monotonic() - started < 20  # one frame's decoding, not the clip's
    assert take.analysis is None and isinstance(take.analysis_error, Interrupted)


def test_the_analysis_picks_for_the_chosen_model(studio: RunningStudio) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        # wan3.0 takes five clips a job; wan2.6 three, and says so.
        five = http.get(f"/api/clips/{cid}/analysis", params={"clips_in_job": 5, "model": "3.0"})
        assert five.status_code == 200 and five.json()["pick"]["clips_in_job"] == 5
        refused = http.get(f"/api/clips/{cid}/analysis", params={"clips_in_job": 4})
        assert refused.status_code == 400 and "1 to 3" in refused.json()["error"]
        unknown = http.get(f"/api/clips/{cid}/analysis", params={"model": "9.9"})
        assert unknown.status_code == 400 and "not a model prep knows" in unknown.json()["error"]


def test_a_check_is_remembered_for_the_library(studio: RunningStudio) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        report = http.post(f"/api/clips/{cid}/check").json()
        assert report["verdict"] == "poor" and report["reasons"]
        listed = {c["name"]: c for c in http.get("/api/clips").json()["clips"]}
    assert listed["take.mp4"]["check"]["verdict"] == "poor"


# -- the bill ------------------------------------------------------------------------------------

def test_the_bill_is_the_cli_estimate(studio: RunningStudio, footage: Path) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        data = http.post("/api/estimate", json=job_body(cid, duration=8, quality="1080p")).json()
    expected = estimate([f"{footage / 'take.mp4'}@1.0-5.0"], output_s=8, quality="1080p")
    assert data["bill"]["credits_units"] == expected.credits_units
    assert data["bill"]["credits_text"] == f"{expected.as_dict()['credits']:g} credits"
    assert data["clips"][0]["spec"] == "take.mp4@1.0-5.0"
    assert data["problems"] == [] and data["prompt_error"] is None
    assert data["command"].startswith(f"prep generate {footage / 'take.mp4'}@1.0-5.0 --prompt")


def test_windows_snap_to_frames_and_a_whole_clip_is_its_path(studio: RunningStudio) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        snapped = http.post("/api/estimate", json={"clips": [
            {"id": cid, "start_ms": 1013, "end_ms": 4987}]}).json()["clips"][0]
        whole = http.post("/api/estimate", json={"clips": [
            {"id": cid, "start_ms": 0, "end_ms": 6000}]}).json()["clips"][0]
    assert (snapped["start_ms"], snapped["end_ms"]) == (1000, 5000)  # 25 fps: 40 ms frames
    assert whole["whole"] and whole["spec"] == "take.mp4"


def test_what_keeps_a_job_from_being_billed_is_said(studio: RunningStudio) -> None:
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        short = http.post("/api/estimate", json={"clips": [
            {"id": cid, "start_ms": 1000, "end_ms": 2400}]}).json()
        assert short["bill"] is None
        assert "is 1.4 s long in the chosen window" in short["problems"][0]["error"]
        long_prompt = http.post("/api/estimate", json=job_body(cid, prompt="x" * 1501)).json()
        assert long_prompt["bill"] is not None and long_prompt["prompt_chars"] == 1501
        assert "1501 characters" in long_prompt["prompt_error"]
        four = http.post("/api/estimate", json={"clips": [{"id": cid}] * 4})
        assert four.status_code == 400 and "1 to 3 reference clips, not 4" in four.json()["error"]
        bad = http.post("/api/estimate", json=job_body(cid, duration=11))
        assert bad.status_code == 400


# -- jobs ----------------------------------------------------------------------------------------

def test_a_job_runs_on_the_engine_and_is_never_paid_twice(studio: RunningStudio,
                                                          sandbox: Sandbox) -> None:
    out = studio.studio.out_dir
    with client(studio) as http:
        cid = clip_id(http, "take.mp4")
        units = http.post("/api/estimate", json=job_body(cid)).json()["bill"]["credits_units"]
        unconfirmed = http.post("/api/jobs", json=job_body(cid))
        assert unconfirmed.status_code == 400
        stale = http.post("/api/jobs", json=job_body(cid, confirm_units=units - 1))
        assert stale.status_code == 409 and "nothing was sent" in stale.json()["error"]
        assert sandbox.state()["tasks"] == []

        started = http.post("/api/jobs", json=job_body(cid, confirm_units=units))
        assert started.status_code == 202
        name = started.json()["name"]
        seen = events(http, name)
        stages = [e["stage"] for e in seen if e["type"] == "stage"]
        assert [s for s in ("prepare", "upload", "submit", "rendering", "download")
                if s in stages] == ["prepare", "upload", "submit", "rendering", "download"]
        done = seen[-1]
        assert done["type"] == "finished" and done["ok"] and done["state"] == "completed"
        assert Path(done["result"]).parent == out and (out / "batch-journal.sqlite").is_file()
        result = http.get(f"/api/jobs/{name}/result", headers={"Range": "bytes=0-9"})
        assert result.status_code == 206 and len(result.content) == 10

        # The same job again: the journal has it, so it resumes and pays nothing new.
        again = http.post("/api/jobs", json=job_body(cid, confirm_units=units))
        assert again.json()["name"] == name
        assert events(http, name)[-1]["resumed"] is True
        listed = http.get("/api/jobs").json()["jobs"]
    assert len(sandbox.state()["tasks"]) == 1
    assert [j["name"] for j in listed] == [name]


def test_asking_again_for_a_running_job_follows_it(sandbox: Sandbox, footage: Path,
                                                   tmp_path: Path) -> None:
    release = threading.Event()
    calls: list[str] = []

    def blocked_run(specs: Any, options: Any, settings: Any, *, hooks: Any, raise_on_failure: bool) -> Any:
        calls.append(str(specs[0]))
        hooks.on_stage("prepare")
        release.wait(timeout=60)
        raise_error()

    def raise_error() -> None:
        from prep.errors import ApiError

        raise ApiError("the stand-in engine stops here")

    settings = settings_for(sandbox, tmp_path)
    studio = Studio([footage], tmp_path / "out", settings,
                    jobs=Jobs(settings, tmp_path / "out", run=blocked_run))
    with run_in_thread(studio) as running, client(running) as http:
        cid = clip_id(http, "take.mp4")
        units = http.post("/api/estimate", json=job_body(cid)).json()["bill"]["credits_units"]
        first = http.post("/api/jobs", json=job_body(cid, confirm_units=units))
        second = http.post("/api/jobs", json=job_body(cid, confirm_units=units))
        assert first.status_code == 202 and second.status_code == 200
        assert second.json()["name"] == first.json()["name"] and not second.json()["started"]
        running_jobs = [j for j in http.get("/api/jobs").json()["jobs"] if j["running"]]
        assert [j["draft"]["clips"][0]["spec"] for j in running_jobs] == ["take.mp4@1.0-5.0"]
        release.set()
        seen = events(http, first.json()["name"])
    assert len(calls) == 1
    assert seen[-1]["type"] == "finished" and not seen[-1]["ok"]
    assert seen[-1]["error"] == "the stand-in engine stops here" and seen[-1]["exit_code"] == 6


# -- the command ---------------------------------------------------------------------------------

def test_a_missing_folder_is_a_media_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["studio", str(tmp_path / "nope"), "--no-browser"])
    assert result.exit_code == 3
    assert "no such folder" in result.stderr


# -- a service that is not there: the retry is shown, and Cancel stops it -------------------------

def test_unreachable_service_shows_the_retry_and_cancel_stops_it(footage: Path,
                                                                  tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed once the block ends
    settings = load_settings({"api_key": "sk-test", "base_url": address, "files_url": address,
                              "cache_dir": str(tmp_path / "cache"), "connect_timeout_s": 600})
    with run_in_thread(Studio([footage], tmp_path / "out", settings)) as running, \
            client(running) as http:
        cid = clip_id(http, "take.mp4")
        units = http.post("/api/estimate", json=job_body(cid)).json()["bill"]["credits_units"]
        name = http.post("/api/jobs", json=job_body(cid, confirm_units=units)).json()["name"]
        seen: list[dict[str, Any]] = []
        started = time.monotonic()
        with http.stream("GET", f"/api/jobs/{name}/events") as answer:
            for line in answer.iter_lines():
                if not line.startswith("data: "):
                    continue
                seen.append(json.loads(line[6:]))
                if seen[-1]["type"] == "retry":
                    assert address in seen[-1]["text"]
                    assert http.post(f"/api/jobs/{name}/cancel").status_code == 202
                if seen[-1]["type"] == "finished":
                    break
        assert time.monotonic() - started < 30  # not the 600 s connect timeout
        assert any(e["type"] == "retry" for e in seen)
        assert seen[-1]["exit_code"] == 130 and "cancelled" in seen[-1]["error"]
        assert http.post(f"/api/jobs/{name}/cancel").status_code == 409
        assert http.post("/api/jobs/no-such-job/cancel").status_code == 404


def test_a_body_nested_too_deeply_is_a_400(studio: RunningStudio) -> None:
    """It was a 500: the JSON parser's RecursionError was not caught."""
    with client(studio) as http:
        answer = http.post("/api/estimate", content=b"[" * 100_000 + b"]" * 100_000,
                           headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "the request is not JSON"


def test_links_out_of_the_folders_are_neither_listed_nor_served(footage: Path, tmp_path: Path,
                                                                sandbox: Sandbox) -> None:
    """`passwd.mp4 -> /etc/passwd` was listed, and its media URL served /etc/passwd."""
    folder = tmp_path / "linked"
    folder.mkdir()
    shutil.copyfile(footage / "take.mp4", folder / "take.mp4")
    (folder / "passwd.mp4").symlink_to("/etc/passwd")
    (folder / "outside.mp4").symlink_to(footage / "take.mp4")  # a video, but outside
    (folder / "again.mp4").symlink_to(folder / "take.mp4")  # inside: fine
    settings = settings_for(sandbox, tmp_path)
    with run_in_thread(Studio([folder], tmp_path / "out", settings)) as running, \
            client(running) as http:
        names = {c["name"] for c in http.get("/api/clips").json()["clips"]}
        assert names == {"take.mp4", "again.mp4"}
        studio = running.studio
        passwd = hashlib.sha256(str(folder / "passwd.mp4").encode()).hexdigest()[:12]
        assert http.get(f"/api/clips/{passwd}/media").status_code == 404
        take = clip_id(http, "take.mp4")
        assert http.get(f"/api/clips/{take}/media").status_code == 200
        # A link changed after the listing is checked again when served.
        (folder / "take.mp4").unlink()
        (folder / "take.mp4").symlink_to("/etc/passwd")
        assert http.get(f"/api/clips/{take}/media").status_code == 404
        assert studio.library.roots == [folder.resolve()]
