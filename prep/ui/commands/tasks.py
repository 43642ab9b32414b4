"""`prep tasks`."""

from __future__ import annotations

import click

from prep.core import rules
from prep.ui.options import api_cli_settings, api_options, common_options, verbose_logging


@click.command()
@click.option("--status", type=click.Choice(rules.TASK_STATUSES), help="Only tasks in this state.")
@click.option("--model", help=f"Only tasks of this model (e.g. {rules.FLASH_MODEL}).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which page, newest first.")
@click.option("--page-size", type=click.IntRange(1, rules.MAX_TASKS_PAGE_SIZE), default=20,
              show_default=True, help="Tasks per page.")
@api_options
@common_options
def tasks(status: str | None, model: str | None, page: int, page_size: int, api_key: str | None,
          base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
          verbose: bool) -> None:
    """The account's recent tasks: status, model, when created and credits reserved.

    The list (GET /v1/tasks) carries no result links: `prep task ID -o DIR` downloads one.

    \b
    Examples:
        prep tasks
        prep tasks --status failed --json
        prep tasks --model wan2.6-reference-video-flash --page 2
    """
    from prep.api.client import Client
    from prep.ui import render

    verbose_logging(verbose)
    settings = api_cli_settings(api_key, base_url, files_url)
    with Client.from_settings(settings) as client:
        found = client.list_tasks(status=status, model=model, page=page, page_size=page_size)
    if json_:
        render.json_out(found.as_dict())
    else:
        render.tasks_table(found)
