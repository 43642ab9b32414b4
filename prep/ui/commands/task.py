"""`prep task`."""

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
    verbose_logging,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="Follow the task until it completes or fails.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Download the result into this folder (named after the task id).")
@click.option("--deadline", type=click.FloatRange(min=1), default=30 * 60.0, show_default=True,
              metavar="S", help="With --wait: stop waiting after S seconds (the task goes on).")
@api_options
@common_options
def task(task_id: str, wait: bool, out_dir: str | None, deadline: float, api_key: str | None,
         base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
         verbose: bool) -> None:
    """Status of a generation task; --wait follows it, -o DIR downloads its result.

    Exit 7 when the task failed or was cancelled (failed tasks are not billed).

    \b
    Examples:
        prep task task-unified-1757169743-7cvnl5zw
        prep task task-unified-1757169743-7cvnl5zw --wait -o results/
    """

    from prep.api.client import Client, PollPolicy
    from prep.errors import TaskFailedError
    from prep.ui import render

    verbose_logging(verbose)
    settings = api_cli_settings(api_key, base_url, files_url)
    files: list[str] = []
    with Client.from_settings(settings) as client, \
            render.ProgressView(show_progress(json_, quiet)) as view:
        current = client.get_task(task_id)
        failure: TaskFailedError | None = None
        try:
            if wait:
                current = client.wait(current,
                                      poll=PollPolicy.for_settings(settings, deadline_s=deadline),
                                      on_update=lambda t: view.task(t.id, t.status, t.progress,
                                                                    t.estimated_time_s))
            else:
                current.raise_for_failure()
        except TaskFailedError as exc:
            failure = exc
            current = client.get_task(task_id) if not current.terminal else current
        if out_dir is not None and current.succeeded:
            files = [str(p) for p in client.download_results(
                current, Path(out_dir), on_progress=lambda n, t: view.transfer(
                    "download", f"download {task_id}", n, t))]
    data = {**current.as_dict(), "files": files}
    if json_:
        render.json_out(data)
    elif not quiet or failure is None:
        render.task_summary(data, files=files)
    if out_dir is not None and not current.succeeded and failure is None:
        render.note(f"the task is {current.status}; nothing to download yet (add --wait)")
    if failure is not None:
        raise failure
