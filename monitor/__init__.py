"""janus-monitor: watches Janus WebRTC servers (VideoRoom) for the SREs who run them."""

__version__ = "0.1.0"
