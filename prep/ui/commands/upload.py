"""`prep upload`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from prep.ui.options import (
    api_cli_settings,
    api_options,
    common_options,
    show_progress,
    upload_mode_option,
    verbose_logging,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@upload_mode_option
@click.option("--no-cache", is_flag=True,
              help="Upload again even if the same content was uploaded and its URL still lives.")
@api_options
@common_options
def upload(files: tuple[str, ...], upload_mode: str, no_cache: bool, api_key: str | None,
           base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
           verbose: bool) -> None:
    """Upload prepared mp4/mov FILES to EvoLink's file host; print their temporary URLs.

    Every file is checked first (mp4/mov by its bytes, at most 100,000,000 bytes); nothing is sent
    if one is unfit. A file uploaded before with the same content is not sent again while its URL
    has more than an hour to live (uploads expire after 72 h).

    \b
    Examples:
        prep upload prepared/interview.mp4
        prep upload prepared/*.mp4 --upload-mode stream --json
    """

    from prep.api.client import Client
    from prep.api.upload import UploadCache, upload_files
    from prep.ui import render

    verbose_logging(verbose)
    settings = api_cli_settings(api_key, base_url, files_url)
    _warn_unfit([Path(f) for f in files])
    cache = None if no_cache else UploadCache(settings.cache_dir / "uploads")
    with Client.from_settings(settings) as client, \
            render.ProgressView(show_progress(json_, quiet)) as view:
        results = upload_files(
            client, [Path(f) for f in files], mode=upload_mode, cache=cache,  # type: ignore[arg-type]
            on_progress=lambda path, sent, total: view.transfer(str(path), f"upload {path.name}",
                                                                sent, total))
    rows = [r.as_dict() for r in results]
    if json_:
        render.json_out(rows)
    else:
        render.upload_table(rows)


def _warn_unfit(paths: list[Path]) -> None:
    """A warning for each file the API would refuse in a job (a 45 s clip, say): uploading it is
    allowed, and it is the user's to know before paying for the upload's use."""
    from prep.core.clipinfo import assess
    from prep.errors import MediaError
    from prep.media.probe import probe
    from prep.ui import render

    for path in paths:
        try:
            if not path.is_file():
                continue  # the upload's own check says what is wrong with it
            verdict = assess(probe(path))
        except (MediaError, OSError):
            continue
        for problem in verdict.problems:
            render.warn(f"{path}: {problem}: a generation request with it would be refused "
                        f"(run `prep prepare {path}` first)")
