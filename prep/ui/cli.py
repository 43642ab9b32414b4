"""The `prep` command line: parse options, call the library, render the result.

The group is lazy (click's lazy-group pattern): each command's module is imported only when that
command runs, so `prep --help` and `prep probe` do not pay for the other fifteen. The table below
names each command's module and carries its one-line help, which `--help` and shell completion
show without importing anything; a test keeps those lines equal to the commands' own.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

from prep.errors import ExitCode
from prep.ui.options import CONTEXT_SETTINGS, PrepGroup

# Command name -> its short help, as the command's docstring opens. The module is
# prep.ui.commands.<name> and the click command in it has the same name.
COMMANDS: dict[str, str] = {
    "account": "The key's credits (what it can still spend, and the account's) and the file "
               "quota.",
    "batch": "Many generate jobs from a CSV or JSONL manifest (or an editor's timeline): costed "
             "up front, pipelined, resumable.",
    "check": "How good each clip is as a reference: one person, face, speech, loudness, picture.",
    "config": "Read and edit prep's config file (TOML; written with mode 0600, comments kept).",
    "doctor": "Which ffmpeg prep uses, its version, and whether it can do what prep needs.",
    "estimate": "Billed seconds and credits of a job, before anything is encoded or uploaded.",
    "generate": "The whole job: prepare CLIPS, show the bill, upload, submit, follow, download.",
    "pick": "Find the best reference window in long footage: one shot, a face, speech, best part "
            "first.",
    "prepare": "Make each clip an mp4 EvoLink accepts: 2-30 s, under 100 MB, H.264/AAC.",
    "probe": "What each clip is, whether EvoLink would accept it, and why not.",
    "sandbox": "Run a local stand-in for EvoLink (files API, generation, tasks) until Ctrl-C.",
    "schema": "Print the JSON Schema (2020-12) of NAME's --json output; without NAME, list the "
              "names.",
    "studio": "A local page to see the footage, pick windows, watch the bill and generate.",
    "task": "Status of a generation task; --wait follows it, -o DIR downloads its result.",
    "tasks": "The account's recent tasks: status, model, when created and credits reserved.",
    "upload": "Upload prepared mp4/mov FILES to EvoLink's file host; print their temporary URLs.",
}


class LazyGroup(PrepGroup):
    """A group whose commands are imported when they are looked up to run (or to show their own
    help); the group's help and name completion read the `COMMANDS` table instead."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"prep.ui.commands.{cmd_name}")
        command: click.Command = getattr(module, cmd_name)
        self.commands[cmd_name] = command
        _resume_collection()
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # A bare Command shortens the table's line as click shortens a command's own help.
        rows = [(name, (self.commands.get(name) or click.Command(name, help=COMMANDS[name]))
                 .get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        names = [CompletionItem(name, help=COMMANDS[name]) for name in sorted(COMMANDS)
                 if name.startswith(incomplete)]
        # The group's own options, as click.Command completes them (not its subcommands).
        return [*names, *click.Command.shell_complete(self, ctx, incomplete)]


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="evolink-prep", prog_name="prep")
def cli() -> None:
    """Get footage ready for EvoLink's wan2.6-reference-video API, and know the bill first.

    Clips are given as PATH or PATH@START-END (e.g. take.mov@1:05-1:20; either side may be empty).
    A folder stands for the video files directly inside it.
    """


# While the command line and the command's module load, the cyclic garbage collector is paused:
# those imports make some 18,000 objects that live as long as the process, and the collector
# would scan them again and again (about a tenth of `prep probe`'s CPU). Once the command's module
# is in, they are frozen (never scanned again) and collection resumes, so a long command
# (prepare, batch, studio) collects its own garbage as usual.
_paused = False


def _resume_collection() -> None:
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def main(*, resume_collection: bool | None = None) -> None:
    """Console-script entry point. `resume_collection`: the caller (`python -m prep`) paused the
    garbage collector before importing this module, and this is whether it was on; None pauses
    it here."""
    global _paused
    if resume_collection is None:
        resume_collection = gc.isenabled()
        gc.disable()
    _paused = resume_collection
    try:
        cli(prog_name="prep")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    finally:  # no command ran (--help, a usage error): as the caller had it
        if _paused:
            _paused = False
            gc.enable()
