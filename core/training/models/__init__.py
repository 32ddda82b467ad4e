"""Training models (`*_model.py`, registered by core.plugin): IRModel and the families that extend it."""
