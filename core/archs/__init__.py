"""One module per network family (`*_arch.py`, registered by core.plugin), and what they share."""
