"""servingopt.metrics."""
