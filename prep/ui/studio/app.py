"""The studio's web app (Starlette): the page, its static files, and the JSON it reads.

Every request must carry the studio's token (the `token` query parameter the printed URL has, or
the `X-Prep-Token` header the page's script sends); anything else is refused with 403, since the
page can spend money. Only 127.0.0.1 and localhost are accepted as the Host, so a web page that
rebinds its own name to this machine cannot reach the studio either. The API key stays in
`Settings` on this side: no answer carries it (the page is told only whether one is set).
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from prep.core import billing, rules
from prep.core.models import billed_head_ms
from prep.core.modelspec import ModelSpec
from prep.core.request import check_model, check_prompt
from prep.errors import PrepError, UsageError
from prep.settings import Settings
from prep.ui.studio.jobs import STAGES, JobDraft, Jobs, bill, bill_dict, compare_dict
from prep.ui.studio.library import Library, clip_id

__all__ = ["Studio", "TimelineEvent", "create_app"]

STATIC_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
TOKEN_HEADER = "x-prep-token"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
# The page loads only what the studio serves: no CDN, no inline script, no other origin.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEvent:
    """An event of a timeline file opened in the studio: a window on one of its clips."""

    number: int
    name: str
    path: Path
    start_ms: int
    end_ms: int


class Studio:
    """What one `prep studio` serves: its folders, output folder, settings and token."""

    def __init__(self, roots: list[Path], out_dir: Path, settings: Settings, *,
                 token: str | None = None, sandbox: bool = False,
                 jobs: Jobs | None = None,
                 events: Sequence[TimelineEvent] = ()) -> None:
        self.roots = roots
        self.events = list(events)  # a timeline file's events: windows on their clips
        self.out_dir = out_dir.resolve()
        self.settings = settings
        self.token = token or secrets.token_urlsafe(24)
        self.sandbox = sandbox
        self.library = Library(roots, cache_dir=settings.cache_dir, ffmpeg=settings.ffmpeg)
        self.jobs = jobs or Jobs(settings, self.out_dir)

    def url(self, host: str, port: int) -> str:
        """The page's address, token included."""
        return f"http://{host}:{port}/?token={self.token}"

    def close(self) -> None:
        """Serving has stopped: take no more jobs (one running goes on in its thread until it
        ends) and stop the clip analyses still decoding."""
        self.jobs.close()
        self.library.close()


def create_app(studio: Studio) -> Starlette:
    """The Starlette app serving `studio`."""
    routes = [
        Route("/", _page(studio)),
        Route("/static/{name}", _static),
        Route("/api/state", _handler(studio, _state)),
        Route("/api/clips", _handler(studio, _clips)),
        Route("/api/clips/{clip_id}/poster.jpg", _picture(studio, "poster")),
        Route("/api/clips/{clip_id}/strip.jpg", _picture(studio, "strip")),
        Route("/api/clips/{clip_id}/media", _media(studio)),
        Route("/api/clips/{clip_id}/analysis", _handler(studio, _analysis)),
        Route("/api/clips/{clip_id}/check", _handler(studio, _check), methods=["POST"]),
        Route("/api/estimate", _handler(studio, _estimate), methods=["POST"]),
        Route("/api/compare", _handler(studio, _compare), methods=["POST"]),
        Route("/api/jobs", _handler(studio, _jobs), methods=["GET"]),
        Route("/api/jobs", _handler(studio, _start_job), methods=["POST"]),
        Route("/api/jobs/{name}/cancel", _handler(studio, _cancel_job), methods=["POST"]),
        Route("/api/jobs/{name}/events", _events(studio)),
        Route("/api/jobs/{name}/result", _result(studio)),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_Guard, token=studio.token)
    app.state.studio = studio
    return app


class _Guard(BaseHTTPMiddleware):
    """Refuses requests without the token (403) or for another host name (421)."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]")
        if host not in ALLOWED_HOSTS:
            return PlainTextResponse("prep studio answers only on 127.0.0.1\n", status_code=421)
        given = request.query_params.get("token") or request.headers.get(TOKEN_HEADER) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return PlainTextResponse(
                "prep studio: this address needs the token from the URL `prep studio` printed\n",
                status_code=403, headers=SECURITY_HEADERS)
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


# -- helpers ---------------------------------------------------------------------------------------

def _problem(err: PrepError, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": err.message, "hint": err.hint, "exit_code": err.exit_code},
                        status_code=status)


def _handler(studio: Studio, work: Any) -> Any:
    """A JSON endpoint: `work(studio, request, body)` runs in a thread; prep errors become 400s
    (404 for an unknown clip), with the message and hint people read."""

    async def endpoint(request: Request) -> Response:
        body: Any = None
        if request.method == "POST":
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                return _problem(UsageError("the request is not JSON"))
        try:
            answer = await run_in_threadpool(work, studio, request, body)
        except KeyError:
            return JSONResponse({"error": "no such clip or job here", "hint": "reload the page"},
                                status_code=404)
        except PrepError as err:
            return _problem(err)
        if isinstance(answer, Response):
            return answer
        return JSONResponse(answer)

    return endpoint


def _page(studio: Studio) -> Any:
    async def page(request: Request) -> Response:
        html = resources.files("prep.ui.studio").joinpath("static", "index.html").read_text("utf-8")
        # The token goes into the page once; the script sends it with every request it makes.
        html = html.replace("__TOKEN__", studio.token)
        return Response(html, media_type="text/html; charset=utf-8")

    return page


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        return PlainTextResponse("not found\n", status_code=404)
    data = resources.files("prep.ui.studio").joinpath("static", name).read_bytes()
    return Response(data, media_type=STATIC_FILES[name])


# -- state and the library ------------------------------------------------------------------------

def _state(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    settings = studio.settings
    try:
        import prep.pick.analyze as analyze

        analyze.require_extras()
        pick_ok, pick_hint = True, ""
    except PrepError as err:
        pick_ok, pick_hint = False, err.hint
    return {
        "folders": [str(r) for r in studio.library.roots],
        "out_dir": str(studio.out_dir),
        "api_key": "set" if settings.api_key else "missing",
        "service": "sandbox" if studio.sandbox else (
            "EvoLink" if settings.is_default_service else settings.base_url),
        "prices": settings.prices.label,
        "pick": {"available": pick_ok, "hint": pick_hint},
        "rules": {
            "max_prompt_chars": rules.MAX_PROMPT_CHARS, "min_output_s": rules.MIN_OUTPUT_S,
            "max_output_s": rules.MAX_OUTPUT_S, "default_output_s": rules.DEFAULT_OUTPUT_S,
            # Every model's choices together: the job is checked against its own model's.
            "qualities": list(dict.fromkeys(q for m in rules.MODEL_SPECS for q in m.qualities)),
            "default_quality": rules.DEFAULT_QUALITY,
            "aspect_ratios": ["auto", *dict.fromkeys(a for m in rules.MODEL_SPECS
                                                     for a in m.aspect_ratios)],
            "default_aspect_ratio": rules.DEFAULT_ASPECT_RATIO,
            "models": [m.id for m in rules.MODEL_SPECS],
            "default_model": settings.model or rules.DEFAULT_MODEL,
            "audio_switch_models": [m.id for m in rules.MODEL_SPECS
                                    if m.generate_audio_default is not None],
            # Each model's output durations, from its table: the page's duration field follows
            # the chosen model (a studio job always has reference videos).
            "model_rules": {m.id: _model_rules(m) for m in rules.MODEL_SPECS},
        },
        "stages": list(STAGES),
        # The library knows a clip by its path in a folder (kept) or named alone (resolved).
        "events": [{"clip_ids": sorted({clip_id(e.path), clip_id(e.path.resolve())}),
                    "number": e.number, "name": e.name,
                    "start_ms": e.start_ms, "end_ms": e.end_ms} for e in studio.events],
    }


def _model_rules(spec: ModelSpec) -> dict[str, Any]:
    """What the page needs of one model's table to offer only the durations it takes."""
    return {"min_output_s": spec.durations_s.low, "max_output_s": spec.durations_s.high,
            "max_output_with_videos_s": spec.output_max_with_videos_s,
            "default_output_s": spec.default_duration_s, "smart_duration": spec.smart_duration,
            "smart_hold_s": spec.billing.smart_hold_s, "qualities": list(spec.qualities),
            # The window a clip may have, how many clips a job takes, and how much of each clip's
            # start is billed for each count (null: every second of it).
            "min_clip_ms": spec.clip_ms.low, "max_clip_ms": spec.clip_ms.high,
            "max_clips": spec.videos.count.high,
            "billed_head_ms": {str(n): billed_head_ms(spec, n)
                               for n in range(1, spec.videos.count.high + 1)}}


def _clips(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    clips = studio.library.scan()
    empty = [str(r) for r in studio.library.roots
             if r.is_dir() and not any(c.folder == r for c in clips)]
    return {"clips": [c.as_dict() for c in clips], "empty_folders": empty}


def _picture(studio: Studio, kind: str) -> Any:
    def draw(studio: Studio, request: Request, body: Any) -> Response:
        clip = studio.library.get(request.path_params["clip_id"])
        data = studio.library.poster(clip) if kind == "poster" else studio.library.strip(clip)
        return Response(data, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    return _handler(studio, draw)


def _media(studio: Studio) -> Any:
    async def media(request: Request) -> Response:
        try:
            clip = await run_in_threadpool(studio.library.get, request.path_params["clip_id"])
            path = await run_in_threadpool(studio.library.servable, clip)
        except KeyError:
            return PlainTextResponse("no such clip\n", status_code=404)
        # FileResponse answers Range requests (206), so the player can seek without reading all.
        return FileResponse(path, headers={"cache-control": "private, no-cache"})

    return media


def _analysis(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    clip = studio.library.get(request.path_params["clip_id"])
    try:
        clips_in_job = int(request.query_params.get("clips_in_job", "1"))
    except ValueError:
        raise UsageError("clips_in_job must be a whole number") from None
    model = request.query_params.get("model")
    return studio.library.analysis(clip, clips_in_job, check_model(model) if model else None)


def _check(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    clip = studio.library.get(request.path_params["clip_id"])
    model = body.get("model") if isinstance(body, dict) else None
    return studio.library.run_check(clip, check_model(model) if model else None)


# -- the bill and jobs ------------------------------------------------------------------------------

def _estimate(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    draft = JobDraft.parse(body, studio.library)
    est, errors = bill(draft, studio.settings)
    prompt_error = None
    try:
        check_prompt(draft.prompt)
    except UsageError as err:
        prompt_error = err.message
    return {
        "clips": [w.as_dict() for w in draft.windows],
        "bill": bill_dict(est) if est is not None else None,
        "problems": [{"error": e.message, "hint": e.hint} for e in errors],
        "prompt_chars": len(draft.prompt), "prompt_error": prompt_error,
        "command": draft.command(studio.out_dir),
        "job": studio.jobs.name_of(draft) if est is not None and prompt_error is None else None,
    }


def _compare(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    return compare_dict(JobDraft.parse(body, studio.library), studio.settings)


def _start_job(studio: Studio, request: Request, body: Any) -> Response:
    draft = JobDraft.parse(body, studio.library)
    check_prompt(draft.prompt)
    confirmed = body.get("confirm_units")
    if not isinstance(confirmed, int) or isinstance(confirmed, bool):
        raise UsageError("the bill must be confirmed before the job is sent")
    est, errors = bill(draft, studio.settings)
    if errors:
        raise errors[0]
    assert est is not None
    if est.credits_units != confirmed:
        return JSONResponse({"error": f"the bill is now {billing.credits_text(est.credits_units)} "
                                      f"credits, not the {billing.credits_text(confirmed)} "
                                      "confirmed; nothing was sent",
                             "hint": "confirm the new amount", "bill": bill_dict(est)},
                            status_code=409)
    job, started = studio.jobs.start(draft, confirmed)
    return JSONResponse({"name": job.name, "started": started, "job": job.summary()},
                        status_code=202 if started else 200)


def _cancel_job(studio: Studio, request: Request, body: Any) -> Response:
    job = studio.jobs.get(request.path_params["name"])
    if job is None:
        raise KeyError(request.path_params["name"])
    if not job.cancel():
        return JSONResponse({"error": "this job has already finished", "hint": ""},
                            status_code=409)
    return JSONResponse({"name": job.name, "cancelling": True}, status_code=202)


def _jobs(studio: Studio, request: Request, body: Any) -> dict[str, Any]:
    here = studio.jobs.all()
    rows = [j.summary() for j in here]
    names = {j.name for j in here}
    for status in _journal(studio):
        if status["name"] not in names:
            rows.append({"name": status["name"], "running": False, "journal": status,
                         "result": status.get("result_path")})
    return {"jobs": rows, "out_dir": str(studio.out_dir)}


def _journal(studio: Studio) -> list[dict[str, Any]]:
    """The output folder's journal, as `prep batch status` reads it ([] when there is none)."""
    from prep.jobs.journal import Journal
    from prep.jobs.layout import journal_path
    from prep.jobs.status import batch_status

    if not journal_path(studio.out_dir).is_file():
        return []
    try:
        with Journal.open(studio.out_dir, create=False) as journal:
            return [s.as_dict() for s in batch_status(journal, now=time.time())]
    except PrepError:
        return []


def _events(studio: Studio) -> Any:
    async def events(request: Request) -> Response:
        job = studio.jobs.get(request.path_params["name"])
        if job is None:
            return JSONResponse({"error": "no job of that name was started in this studio",
                                 "hint": "its state is in the output folder's journal"},
                                status_code=404)

        async def stream() -> Any:
            yield "retry: 2000\n\n"
            async for event in job.follow():
                yield f"data: {json.dumps(event)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    return events


def _result(studio: Studio) -> Any:
    async def result(request: Request) -> Response:
        name = request.path_params["name"]
        job = studio.jobs.get(name)
        path: Path | None = job.result_path if job is not None else None
        if path is None:
            rows = await run_in_threadpool(_journal, studio)
            found = next((r.get("result_path") for r in rows if r["name"] == name), None)
            path = Path(found) if found else None
        # Only files in the output folder are served, whatever the journal says.
        if path is None or not path.is_file() or studio.out_dir not in path.resolve().parents:
            return PlainTextResponse("no result for that job yet\n", status_code=404)
        return FileResponse(path, media_type="video/mp4",
                            headers={"cache-control": "private, no-cache"})

    return result
