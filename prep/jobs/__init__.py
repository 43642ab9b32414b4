"""The one job engine: estimate, generate (a batch of one), batch plan and run, the journal."""
