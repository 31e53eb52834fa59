"""servingopt.model."""
