"""Talking to Janus itself: the Admin API client (admin.py)."""
