"""Command lines: each module parses and checks its arguments with the standard library (plus core.errors and
core.io) before it imports torch, basicsr or the registration, so `--help` and argument errors answer at once."""
