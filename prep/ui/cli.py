"""The `prep` command line: parse options, call the library, render the result.

Only click and the standard library are imported at start-up, so `prep --help` stays fast; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import sys

import click

from prep.ui.commands.account import account
from prep.ui.commands.batch import batch
from prep.ui.commands.check import check
from prep.ui.commands.config import config
from prep.ui.commands.doctor import doctor
from prep.ui.commands.estimate import estimate
from prep.ui.commands.generate import generate
from prep.ui.commands.pick import pick
from prep.ui.commands.prepare import prepare
from prep.ui.commands.probe import probe
from prep.ui.commands.sandbox import sandbox
from prep.ui.commands.schema import schema
from prep.ui.commands.studio import studio
from prep.ui.commands.task import task
from prep.ui.commands.tasks import tasks
from prep.ui.commands.upload import upload
from prep.ui.options import CONTEXT_SETTINGS, PrepGroup


@click.group(cls=PrepGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="evolink-prep", prog_name="prep")
def cli() -> None:
    """Get footage ready for EvoLink's wan2.6-reference-video API, and know the bill first.

    Clips are given as PATH or PATH@START-END (e.g. take.mov@1:05-1:20; either side may be empty).
    A folder stands for the video files directly inside it.
    """



cli.add_command(probe)
cli.add_command(estimate)
cli.add_command(upload)
cli.add_command(task)
cli.add_command(config)
cli.add_command(generate)
cli.add_command(sandbox)
cli.add_command(prepare)
cli.add_command(doctor)
cli.add_command(batch)
cli.add_command(pick)
cli.add_command(schema)
cli.add_command(account)
cli.add_command(tasks)
cli.add_command(check)
cli.add_command(studio)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="prep")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
