"""Training: option checks, distributed start-up, the console, the loop, resume, and the models."""
