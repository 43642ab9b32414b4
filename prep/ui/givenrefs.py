"""The command line's references besides clips: `--image`, `--image-from`, `--audio-ref`,
`--voice`, `--voice-from` and `--voice-for`, for `prep generate` and `prep estimate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["reference_options", "references_given"]

F = TypeVar("F", bound=Callable[..., Any])


def reference_options(fn: F) -> F:
    """--image / --image-from, --audio-ref, --voice / --voice-from / --voice-for."""
    many: dict[str, Any] = {"multiple": True, "type": click.Path(path_type=Path)}
    for decorator in reversed((
        click.option("--image", "images", metavar="STILL", **many,
                     help="A still reference (wan2.7, wan3.0; PNG without transparency, JPEG, BMP "
                          "or WEBP), the prompt's \"Image N\" in order. Repeatable."),
        click.option("--image-from", "images_from", metavar="CLIP", **many,
                     help="Make a still reference from CLIP: the frame of its largest single "
                          "face (needs the pick extra); after the --image ones. Repeatable."),
        click.option("--audio-ref", "audio_refs", metavar="AUDIO", **many,
                     help="A standalone sound reference (wan3.0; WAV or MP3, 1-15 s, 15 s in "
                          "all), the prompt's \"Audio N\". Repeatable."),
        click.option("--voice", "voices", metavar="CLIP_OR_AUDIO", **many,
                     help="A voice bound to a reference (wan2.7; WAV or MP3, 1-10 s), or a clip "
                          "to take the longest speech of. Repeatable: the Nth voice speaks for "
                          "Video N unless --voice-for says otherwise."),
        click.option("--voice-from", "voices_from", metavar="CLIP", **many,
                     help="Make a voice from CLIP's longest speech (1-10 s; needs the pick "
                          "extra); after the --voice ones. Repeatable."),
        click.option("--voice-for", "voices_for", metavar="REF", multiple=True,
                     help="What each voice (in order) speaks for: video1, video2..., image1... "
                          "(default: the Nth voice, videoN)."),
    )):
        fn = decorator(fn)
    return fn


def references_given(images: tuple[Path, ...], images_from: tuple[Path, ...],
                audio_refs: tuple[Path, ...], voices: tuple[Path, ...],
                voices_from: tuple[Path, ...], voices_for: tuple[str, ...]) -> tuple[Any, ...]:
    """The job's references from the options (a path to footage is made from in the run)."""
    if not (images or images_from or audio_refs or voices or voices_from or voices_for):
        return ()  # (and the reference modules stay unloaded)
    from prep.core.references import ReferenceSpec, default_binding
    from prep.errors import UsageError
    from prep.jobs.references import is_footage

    for flag, paths in (("--image-from", images_from), ("--voice-from", voices_from)):
        for path in paths:
            if not is_footage(path):
                raise UsageError(f"{flag} {path}: not a clip", hint=f"give a video clip to {flag}")
    spoken = [*voices, *voices_from]
    if len(voices_for) > len(spoken):
        raise UsageError(f"{len(voices_for)} --voice-for for {len(spoken)} voices",
                         hint="give one --voice-for per --voice / --voice-from, in order")
    return (*(ReferenceSpec(kind="image", path=p) for p in (*images, *images_from)),
            *(ReferenceSpec(kind="audio", path=p) for p in audio_refs),
            *(ReferenceSpec(kind="voice", path=p,
                            binds=voices_for[i] if i < len(voices_for) else default_binding(i))
              for i, p in enumerate(spoken)))
