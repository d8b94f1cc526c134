"""The fleet of daemons that share a broker: topology names and who owns what."""
