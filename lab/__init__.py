"""Local lab: a real Janus (Debian package) plus the daemon, for `make run` and e2e tests.

Standard library only, so it imports without the project's dependencies.
"""
