"""`prep studio`."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import click

from prep.errors import MediaError, UsageError
from prep.ui.options import cli_settings, timeline_options


class _Terminated(BaseException):
    """SIGTERM arrived: stop as Ctrl-C stops."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


@click.command()
@click.argument("folders", nargs=-1, metavar="[FOLDER]...")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 to serve on; 0 picks a free one.")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@click.option("-o", "--output", "out_dir", default="prep-out", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False),
              help="Folder for results, prepared clips and the job journal (as generate -o).")
@click.option("--sandbox", "use_sandbox", is_flag=True,
              help="Run a local EvoLink sandbox in this process and send jobs there: no account, "
                   "no network, nothing paid.")
@timeline_options
@click.option("-v", "--verbose", is_flag=True, help="Log every request to stderr.")
def studio(folders: tuple[str, ...], port: int, no_browser: bool, out_dir: str,
           use_sandbox: bool, media_dirs: tuple[str, ...], map_paths: tuple[str, ...],
           verbose: bool) -> None:
    """A local page to see the footage, pick windows, watch the bill and generate.

    Lists every video in FOLDER(s) (default: the current folder; a timeline file, .otio, .edl,
    .fcpxml or FCP 7 .xml, brings its events' clips, each event a window on its clip) with its
    verdict; a clip opens
    in a player over a timeline of its shots, faces and speech, where the window is dragged or
    typed; the job's bill updates as anything changes, and Generate (after confirming the
    amount) runs the same job as `prep generate`, journaled in the output folder. Serves on
    127.0.0.1 only; the printed URL carries a token that every request needs. Ctrl-C stops it.

    \b
    Examples:
        prep studio ~/footage
        prep studio takes/ broll/ -o results/ --port 8790 --no-browser
        prep studio demo-out/samples --sandbox        # try it with no account
        prep studio selects.edl --media /mnt/rushes   # the editor's selects as windows
    """
    from prep.ui import render
    from prep.ui.studio import Studio, serve
    from prep.ui.studio.server import bind

    roots = [Path(f).expanduser() for f in folders] or [Path.cwd()]
    for root in roots:
        if not root.exists():
            raise MediaError(root, "no such folder", hint="give folders that hold your footage")
    roots, events = _timeline_events(roots, media_dirs, map_paths)
    settings = cli_settings()
    sandbox = None
    if use_sandbox:
        from dataclasses import replace

        from prep.sandbox import SandboxConfig, run_in_thread

        sandbox = run_in_thread(SandboxConfig(speed=10.0, ffmpeg=settings.ffmpeg))
        settings = replace(settings, api_key=sandbox.key, base_url=sandbox.url,
                           files_url=sandbox.files_url)
    try:
        try:
            sock = bind(port)
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})",
                             hint="pick another --port, or --port 0 for a free one") from exc
        app = Studio(roots, Path(out_dir), settings, sandbox=use_sandbox, events=events)

        def ready(url: str) -> None:
            click.echo(url)
            where = "a local sandbox (nothing is paid)" if use_sandbox else (
                "EvoLink" if settings.is_default_service else settings.base_url)
            render.note(f"prep studio: {len(roots)} folder(s); results in {app.out_dir}; jobs go "
                        f"to {where}. Ctrl-C stops it")
            if not settings.api_key:
                render.warn("no EvoLink API key is configured: the page shows clips and bills, "
                            "but cannot generate (set EVOLINK_API_KEY, or try --sandbox)")
            if not no_browser:
                import webbrowser

                with contextlib.suppress(Exception):  # no browser here: the URL is printed
                    webbrowser.open(url)

        # uvicorn stops cleanly on SIGTERM too, then raises the signal again: catch it here, so
        # the sandbox's temporary files are removed as on Ctrl-C.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        try:
            serve(app, sock, verbose=verbose, on_ready=ready)
        except (KeyboardInterrupt, _Terminated):
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    finally:
        if sandbox is not None:
            sandbox.stop()
    render.note("prep studio: stopped")


def _timeline_events(roots: list[Path], media_dirs: tuple[str, ...],
                     map_paths: tuple[str, ...]) -> tuple[list[Path], list[Any]]:
    """The roots with each timeline file replaced by its events' clips, and those events."""
    from prep.jobs.timeline import is_timeline

    if not any(is_timeline(r) for r in roots):
        return roots, []
    from prep.errors import ManifestError
    from prep.jobs.timeline import read_events
    from prep.ui import render
    from prep.ui.options import timeline_settings
    from prep.ui.studio import TimelineEvent

    options = timeline_settings(media_dirs, map_paths)
    out: list[Path] = []
    events: list[TimelineEvent] = []
    for root in roots:
        if not is_timeline(root):
            out.append(root)
            continue
        found, problems, _names = read_events(root, options)
        if problems:
            render.manifest_problems(str(root), problems)
            raise ManifestError(str(root), problems)
        for event in found:
            window = event.window
            assert window.start is not None and window.end is not None
            events.append(TimelineEvent(number=event.number, name=event.name, path=event.path,
                                        start_ms=window.start.resolve(None),
                                        end_ms=window.end.resolve(None)))
            if event.path not in out:
                out.append(event.path)
    return out, events
