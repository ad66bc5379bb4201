"""Training: network architectures (more to come: patch sampler, losses, training loop)."""
