"""Errors cross process boundaries intact: a worker's MediaError is still a MediaError (exit 3)."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from prep import errors
from prep.errors import JobError
from prep.jobs.manifest import Problem

SAMPLES: list[errors.PrepError] = [
    errors.PrepError("boom", hint="h"),
    errors.UsageError("--duration 11 is not allowed", hint="2 to 10"),
    errors.MediaError(Path("/clips/take.mov"), "no video stream", hint="pass a video file"),
    errors.FfmpegError("/clips/take.mov", "ffmpeg failed", hint="see --verbose", detail="x264 [error]"),
    errors.ToolMissingError("no ffmpeg", hint="install it"),
    errors.ApiError("answered 500", status=500, code="internal", request_id="r1"),
    errors.AuthError("401", status=401),
    errors.QuotaError("402", status=402, hint="top up"),
    errors.RequestRejected("400", status=400),
    errors.TaskFailedError("the task failed", task_id="t1", hint="not billed"),
    errors.TaskTimeoutError("deadline", task_id="t2"),
    errors.Interrupted("stopped", hint="run again"),
    errors.ManifestError("jobs.csv", [Problem(line=3, message="bad", exit_code=3)]),
    JobError("job a: failed", exit_code=5, hint="again"),
]


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_pickle_round_trip_keeps_class_code_hint_and_fields(error: errors.PrepError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert (back.message, back.hint, back.exit_code, str(back)) == (
        error.message, error.hint, error.exit_code, str(error))
    assert back.__dict__ == error.__dict__


def _raise_media_error(path: str) -> None:
    raise errors.MediaError(path, "cannot be made compliant", hint="re-export it")


def test_a_process_pool_workers_error_arrives_as_itself() -> None:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(_raise_media_error, "/clips/take.mov")
        with pytest.raises(errors.MediaError) as info:
            future.result(timeout=120)
    assert info.value.exit_code == 3 and info.value.hint == "re-export it"
    assert "take.mov" in info.value.message
