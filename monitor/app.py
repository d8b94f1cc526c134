"""Wiring only: build the parts, the dispatch table and the routes, and run until a signal.

Each handler gets what it uses under its own key (``monitor.ingest.keys``,
``monitor.web.keys``); lifecycles (scheduler, Janus clients, pollers) are ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import signal
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog
from aiohttp import WSCloseCode, web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry

from monitor.config import Config, LiveConfig, split_host_port
from monitor.fleet.ownership import Ownership
from monitor.fleet.topology import member_id
from monitor.ingest import keys as ingest_keys
from monitor.ingest.amqp import AmqpReceiver
from monitor.ingest.duplicates import DuplicateBatches
from monitor.ingest.http import receive_events
from monitor.ingest.pipeline import Pipeline
from monitor.ingest.ws import receive_event_socket
from monitor.janus.clients import JanusClients, ObserverFor
from monitor.janus.wire import Observer, RequestRecord
from monitor.logs import configure_logging
from monitor.memory import CHECK_INTERVAL, FrozenHeap
from monitor.metrics import Collector, build_registry, collectors
from monitor.metrics.exposition import render_chunks
from monitor.pacing import Pacer
from monitor.polling.schedule import Polling
from monitor.readiness import Readiness
from monitor.reload import Reloader
from monitor.remediation.audit import AuditLog
from monitor.remediation.executor import Remediator
from monitor.scope import Scope
from monitor.signals import Signals
from monitor.signals.ice import IceSignal
from monitor.state import Limits, RemovalHooks, Router, State, membership_table
from monitor.telemetry import Telemetry
from monitor.web import api, endpoints, explain
from monitor.web import keys as web_keys
from monitor.web.server import JsonErrorRunner

log = structlog.get_logger("monitor")

SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
# aiohttp bounds each request line and header at 8190 bytes but allows 32768 headers, so one
# request could hold some 256 MiB of headers. Janus (libcurl), Prometheus and browsers send a
# few dozen at most.
MAX_HEADERS = 100
RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime")  # for the wiring's own lifecycles


def sweep_interval(config: Config) -> float:
    """Often enough that state is dropped soon after stale_after, rarely enough to be cheap."""
    return max(1.0, min(config.limits.stale_after / 4, 15.0))


def state_limits(config: Config) -> Limits:
    limits = config.limits
    return Limits(
        limits.stale_after,
        limits.max_tracked_handles,
        limits.max_unknown_emitters,
        limits.max_tracked_rooms,
        limits.max_tracked_publishers,
        limits.max_tracked_sessions,
    )


def target_names(config: Config) -> tuple[str, ...]:
    return tuple(t.name for t in config.targets)


@dataclass(slots=True)
class Runtime:
    """The daemon's parts, built once; only this module holds them all."""

    live: LiveConfig
    config_path: Path | None
    telemetry: Telemetry
    state: State
    pipeline: Pipeline
    registry: CollectorRegistry
    collectors: tuple[Collector, ...]
    readiness: Readiness
    reloader: Reloader
    signals: Signals
    audit: AuditLog
    scope: Scope
    ownership: Ownership | None

    @property
    def config(self) -> Config:
        return self.live.current

    def reload(self) -> str | None:
        return self.reloader.reload()

    def reload_answer(self) -> tuple[str | None, list[str]]:
        error = self.reloader.reload()
        return error, [] if error is not None else list(self.reloader.needs_restart)


def build_runtime(config: Config, config_path: Path | None = None) -> Runtime:
    live = LiveConfig(config)
    telemetry = Telemetry(config_reload_ok=True, config_reload_time=time.time())
    hooks = RemovalHooks()
    router = Router()  # signals register here, before the state's own appliers are added
    signals = Signals(ice=IceSignal(lambda: live.current.signals.setup_timeout))
    signals.register(router, hooks)
    ownership = (
        Ownership(member_id(), config.amqp.shards, config.amqp.probe_interval, time.monotonic())
        if config.amqp
        else None
    )
    state = State(
        state_limits(config),
        () if ownership else target_names(config),
        table=membership_table(router),
        hooks=hooks,
        telemetry=telemetry,
    )
    scope = Scope(live, state, telemetry, state_limits, ownership)
    reloader = Reloader(live, config_path, telemetry)
    audit = AuditLog(config.remediation.audit_log)

    def follow_audit_path(new: Config) -> None:
        audit.path = Path(new.remediation.audit_log)

    reloader.hooks.append(follow_audit_path)
    reloader.hooks.append(scope.apply)
    reloader.hooks.append(lambda new: configure_logging(new.log.level, new.log.format))
    members = collectors(
        state,
        telemetry,
        lambda: live.current.signals.expose_display,
        signals=signals,
        tolerance=lambda: live.current.remediation.over_bitrate.tolerance,
        fleet=ownership,
        targets=lambda: target_names(live.current),
    )
    return Runtime(
        live=live,
        config_path=config_path,
        telemetry=telemetry,
        state=state,
        pipeline=Pipeline(state, telemetry),
        registry=build_registry(members),
        collectors=members,
        readiness=Readiness(),
        reloader=reloader,
        signals=signals,
        audit=audit,
        scope=scope,
        ownership=ownership,
    )


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME_KEY]
    scheduler = AsyncIOScheduler()

    async def sweep() -> None:  # a coroutine, so it runs on the loop that owns the state
        now = time.monotonic()
        polling = runtime.scope.polling
        pacer, dropped = Pacer(), 0
        for went in runtime.state.sweep_steps(now, polling.in_flight() if polling else None):
            dropped += went
            await pacer.pause()
        runtime.telemetry.keep_only(set(runtime.state.servers))
        if runtime.ownership is not None:
            horizon = now - runtime.config.limits.stale_after
            runtime.ownership.forget_emitters(set(target_names(runtime.config)), horizon)
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

    async def tick() -> None:  # on the loop, like the sweep
        now, polling = time.monotonic(), runtime.scope.polling
        runtime.signals.tick(runtime.state.servers, now)
        runtime.state.expire_tombstones(now, polling.in_flight() if polling else None)

    scheduler.add_job(
        tick, "interval", seconds=1.0, id="signals_tick", max_instances=1, coalesce=True
    )
    heap = FrozenHeap()
    heap.install()

    async def thaw() -> None:
        heap.tick()

    scheduler.add_job(thaw, "interval", seconds=CHECK_INTERVAL, id="gc_thaw",
                      max_instances=1, coalesce=True)  # fmt: skip
    scheduler.start()
    app[SCHEDULER] = scheduler
    yield
    scheduler.shutdown(wait=False)
    heap.uninstall()


def _admin_observer(telemetry: Telemetry) -> ObserverFor:
    """Each target's Admin requests feed its poll telemetry (request metrics, budget)."""

    def observer_for(name: str) -> Observer:
        def record(r: RequestRecord) -> None:
            telemetry.poll(name).record(r.request, r.started, r.duration, r.error)

        return record

    return observer_for


async def _janus(app: web.Application) -> AsyncIterator[None]:
    """The Janus clients of every target, and the pollers that use them."""
    runtime = app[RUNTIME_KEY]
    async with aiohttp.ClientSession() as http:
        clients = JanusClients(http, _admin_observer(runtime.telemetry))
        polling = Polling(
            clients, app[SCHEDULER], runtime.state, runtime.telemetry, runtime.readiness
        )

        def sync(config: Config) -> None:
            clients.sync(config.targets)  # before the scope: pollers start with the new clients

        sync(runtime.config)
        runtime.scope.polling = polling
        runtime.scope.apply()
        runtime.reloader.hooks.insert(0, sync)
        remediator = Remediator(clients, runtime.audit, runtime.telemetry)

        async def remediate() -> None:  # on the loop: the policy reads state
            config = runtime.scope.remediable(runtime.config)
            await remediator.tick(config, runtime.state, runtime.signals.bitrate, time.monotonic())

        app[SCHEDULER].add_job(
            remediate, "interval", seconds=1.0, id="remediation", max_instances=1, coalesce=True
        )
        yield
        app[SCHEDULER].remove_job("remediation")
        runtime.reloader.hooks.remove(sync)
        runtime.scope.polling = None
        await polling.close()


async def _amqp(app: web.Application) -> AsyncIterator[None]:
    """With ``amqp`` set: consume the shard queues until shutdown."""
    runtime = app[RUNTIME_KEY]
    amqp, ownership = runtime.config.amqp, runtime.ownership
    if amqp is None or ownership is None:
        yield
        return
    gate = "amqp: first connection to the broker"
    runtime.readiness.wait_for(gate)
    receiver = AmqpReceiver(
        amqp,
        runtime.pipeline,
        ownership,
        on_scope=runtime.scope.apply,
        targets=lambda: target_names(runtime.config),
        max_body_bytes=runtime.config.webhook.max_body_bytes,
        on_connected=lambda: runtime.readiness.passed(gate),
    )
    receiver.start()
    yield
    await receiver.close()


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[ingest_keys.OPEN_SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"janus-monitor shutting down")


def add_routes(app: web.Application, webhook_path: str) -> None:
    app.router.add_post(webhook_path, receive_events)
    app.router.add_get(webhook_path, receive_event_socket)
    app.router.add_get("/metrics", endpoints.metrics)
    app.router.add_get("/-/healthy", endpoints.healthy)
    app.router.add_get("/-/ready", endpoints.ready)
    app.router.add_post("/-/reload", endpoints.reload)
    app.router.add_put("/-/reload", endpoints.reload)
    app.router.add_get("/api/v1/servers", api.api_servers)
    app.router.add_get("/api/v1/rooms", api.api_rooms)
    app.router.add_get("/api/v1/publishers", api.api_publishers)
    app.router.add_get("/api/v1/actions", api.api_actions)
    app.router.add_get("/api/v1/publishers/{server}/{room}/{id}", explain.explain_publisher)
    app.router.add_get("/api/v1/handles/{server}/{session}/{handle}", explain.explain_handle)
    app.router.add_get("/", endpoints.landing)


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME_KEY] = runtime
    app[ingest_keys.PIPELINE] = runtime.pipeline
    app[ingest_keys.TELEMETRY] = runtime.telemetry
    app[ingest_keys.DUPLICATES] = DuplicateBatches()
    app[ingest_keys.CONFIG] = runtime.live
    app[ingest_keys.OPEN_SOCKETS] = weakref.WeakSet()
    app[web_keys.STATE] = runtime.state
    app[web_keys.CONFIG] = runtime.live
    app[web_keys.REGISTRY] = runtime.registry
    members = runtime.collectors
    app[web_keys.METRICS] = lambda: render_chunks(members)
    app[web_keys.READINESS] = runtime.readiness
    app[web_keys.RELOAD] = runtime.reload_answer
    app[web_keys.SIGNALS] = runtime.signals
    app[web_keys.AUDIT] = runtime.audit
    app.cleanup_ctx.append(_scheduler)
    app.cleanup_ctx.append(_janus)
    app.cleanup_ctx.append(_amqp)
    app.on_shutdown.append(_close_sockets)
    add_routes(app, runtime.config.webhook.path)
    return app


async def start(runtime: Runtime, host: str, port: int) -> web.AppRunner:
    """Start serving; port 0 picks a free port (see runner.addresses)."""
    # The webhook decompresses bodies itself, with a size cap; aiohttp's would have none.
    runner = JsonErrorRunner(
        build_app(runtime), auto_decompress=False, access_log=None, max_headers=MAX_HEADERS
    )
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
