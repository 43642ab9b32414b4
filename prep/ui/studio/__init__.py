"""`prep studio`: a local page to see the footage, choose windows, watch the bill and generate.

It serves on 127.0.0.1 only, behind a random token that the printed URL carries, and drives the
same code as the command line: the library is `prep probe` (and `prep check` when asked), the
timeline is what `prep pick` sees, the bill is `prep estimate`'s, and a job is the engine's
(`prep generate`), journaled in the output folder. The page is plain HTML, CSS and JavaScript
shipped in this package (static/): no build step, nothing fetched from elsewhere.

    from prep.ui.studio import Studio, run_in_thread
    with run_in_thread(Studio([Path("footage")], Path("out"), settings)) as running:
        print(running.url)
"""

from __future__ import annotations

from .app import Studio, TimelineEvent, create_app
from .server import RunningStudio, run_in_thread, serve

__all__ = ["RunningStudio", "Studio", "TimelineEvent", "create_app", "run_in_thread", "serve"]
