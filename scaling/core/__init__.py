"""Words every package shares, free of JAX."""
