"""servingopt.optimize."""
