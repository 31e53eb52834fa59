"""servingopt.devcluster."""
