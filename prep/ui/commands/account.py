"""`prep account`."""

from __future__ import annotations

import click

from prep.ui.options import api_cli_settings, api_options, common_options, verbose_logging


@click.command()
@api_options
@common_options
def account(api_key: str | None, base_url: str | None, files_url: str | None, json_: bool,
            quiet: bool, verbose: bool) -> None:
    """The key's credits (what it can still spend, and the account's) and the file quota.

    Both come from endpoints EvoLink's own clients use (GET /v1/credits, GET
    /api/v1/files/quota); a server that does not offer one says so and the other is still shown.

    \b
    Examples:
        prep account
        prep account --json
    """
    from prep.api.client import Client
    from prep.ui import render

    verbose_logging(verbose)
    settings = api_cli_settings(api_key, base_url, files_url)
    notes = []
    with Client.from_settings(settings) as client:
        credits = client.credits()
        if credits is None:
            notes.append(f"{settings.base_url} does not report credits (GET /v1/credits)")
        quota = client.files_quota()
        if quota is None:
            notes.append(f"{settings.files_url} does not report a file quota "
                         "(GET /api/v1/files/quota)")
    if json_:
        render.json_out({"credits": credits.as_dict() if credits is not None else None,
                         "files": quota, "notes": notes})
        for line in notes:
            render.note(line)
    else:
        render.account_view(credits, quota, notes=notes)
