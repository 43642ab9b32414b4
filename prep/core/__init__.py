"""Pure rules and arithmetic: no I/O, no clock, no subprocess. The only copy of each API rule."""
