"""Admin API polling within each target's budget: one Poller per target, scheduled."""
