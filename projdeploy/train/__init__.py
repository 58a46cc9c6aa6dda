"""Training: one loop for every model kind, checkpoints, losses."""
