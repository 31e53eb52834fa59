"""servingopt.controller."""
