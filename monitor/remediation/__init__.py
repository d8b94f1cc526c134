"""Remediation: a pure policy decides, one executor acts (cap, then kick, publishers that
stay over their room's bitrate cap), every decision audited. Safe by default: dry_run."""
