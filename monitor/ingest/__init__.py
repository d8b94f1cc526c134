"""Receiving events: sampleevh POSTs (http) and wsevh frames (ws), one pipeline behind both."""
