"""One module per newer command (beets' `ui/commands/` shape): each parses its options, calls one
library function and renders. `prep/ui/cli.py` registers each with `cli.add_command`. Modules here
import only click at the top, so `prep --help` stays fast."""
