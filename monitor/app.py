"""Wiring only: build the aiohttp application and run it until a signal stops it."""

from __future__ import annotations

import asyncio
import signal
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import structlog
from aiohttp import WSCloseCode, web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import Config, split_host_port
from monitor.ingest.pipeline import Pipeline
from monitor.ingest.ws import OPEN_SOCKETS
from monitor.metrics import StateCollector, Stats, build_registry
from monitor.poller import Polling
from monitor.runtime import RUNTIME, Runtime, state_limits
from monitor.state import State
from monitor.web import add_routes
from monitor.webserver import JsonErrorRunner

log = structlog.get_logger("monitor")

SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)


def sweep_interval(config: Config) -> float:
    """Often enough that state is dropped soon after stale_after, rarely enough to be cheap."""
    return max(1.0, min(config.limits.stale_after / 4, 15.0))


def build_runtime(config: Config, config_path: Path | None = None) -> Runtime:
    state = State(state_limits(config), tuple(t.name for t in config.targets))
    stats = Stats(config_reload_ok=True, config_reload_time=time.time())
    runtime = Runtime(
        config=config,
        config_path=config_path,
        state=state,
        stats=stats,
        pipeline=Pipeline(state, stats),
        registry=build_registry(
            StateCollector(state, stats, lambda: runtime.config.signals.expose_display)
        ),
    )
    return runtime


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    scheduler = AsyncIOScheduler()

    async def sweep() -> None:  # a coroutine, so it runs on the loop that owns the state
        dropped = runtime.state.sweep(time.monotonic())
        runtime.stats.keep_only(set(runtime.state.servers))
        if dropped:
            log.info("state_swept", dropped=dropped, tracked=runtime.state.tracked())

    scheduler.add_job(
        sweep,
        "interval",
        seconds=sweep_interval(runtime.config),
        id="state_sweep",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    app[SCHEDULER] = scheduler
    yield
    scheduler.shutdown(wait=False)


async def _polling(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    async with aiohttp.ClientSession() as http:
        polling = Polling(http, app[SCHEDULER], runtime.state, runtime.stats, runtime.ready_gates)
        polling.sync(runtime.config.targets)
        hook = lambda config: polling.sync(config.targets)  # noqa: E731
        runtime.reload_hooks.append(hook)
        yield
        runtime.reload_hooks.remove(hook)
        await polling.close()


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[OPEN_SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"janus-monitor shutting down")


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app[OPEN_SOCKETS] = weakref.WeakSet()
    app.cleanup_ctx.append(_scheduler)
    app.cleanup_ctx.append(_polling)
    app.on_shutdown.append(_close_sockets)
    add_routes(app, runtime.config.webhook.path)
    return app


async def start(runtime: Runtime, host: str, port: int) -> web.AppRunner:
    """Start serving; port 0 picks a free port (see runner.addresses)."""
    # The webhook decompresses bodies itself, with a size cap; aiohttp's would have none.
    runner = JsonErrorRunner(build_app(runtime), auto_decompress=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve(config: Config, config_path: Path | None) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads the config."""
    runtime = build_runtime(config, config_path)
    host, port = split_host_port(config.listen)
    runner = await start(runtime, host, port)
    log.info("started", listen=config.listen, summary=config.summary())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, runtime.reload)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
