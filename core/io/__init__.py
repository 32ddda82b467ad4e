"""Files: checkpoints, atomic writes, option files and run arguments, path checks, metrics logs."""
