"""Everything that talks to a person: the CLI, terminal rendering, the HTML report, pictures."""
