"""Datasets (`*_dataset.py`, registered by core.plugin), folder layouts, preparation and loading."""
