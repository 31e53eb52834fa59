"""servingopt.kube."""
