"""Decoding: JSON from Janus (events and Admin API replies) into typed, bounded records."""
