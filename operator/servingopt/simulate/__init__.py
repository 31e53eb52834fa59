"""servingopt.simulate."""
