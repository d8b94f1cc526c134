"""What the receivers get from the app, each under its own key (set by the wiring)."""

from __future__ import annotations

import weakref

from aiohttp import web

from monitor.config import LiveConfig
from monitor.ingest.duplicates import DuplicateBatches
from monitor.ingest.pipeline import Pipeline
from monitor.telemetry import Telemetry

PIPELINE = web.AppKey("ingest_pipeline", Pipeline)
TELEMETRY = web.AppKey("ingest_telemetry", Telemetry)
DUPLICATES = web.AppKey("ingest_duplicates", DuplicateBatches)
CONFIG = web.AppKey("ingest_config", LiveConfig)  # webhook settings, read per request (reload)
OPEN_SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("open_sockets")
