"""The pollers of all targets that have an admin_url: one APScheduler job each
(``max_instances=1, coalesce=True``), kept in step with the config on reload."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import TargetConfig
from monitor.janus.clients import JanusClients
from monitor.polling.poller import Poller
from monitor.readiness import Readiness
from monitor.state import State
from monitor.tasks import stop_tasks
from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.poller")
POLLS_STOP_WITHIN = 5.0  # seconds for polls in flight to stop; each is bounded by its timeout


class Polling:
    """The pollers of all targets that have an admin_url, kept in step with the config."""

    def __init__(
        self,
        clients: JanusClients,
        scheduler: AsyncIOScheduler,
        state: State,
        telemetry: Telemetry,
        readiness: Readiness,
    ) -> None:
        self.clients = clients
        self.scheduler = scheduler
        self.state = state
        self.telemetry = telemetry
        self.readiness = readiness
        self.pollers: dict[str, Poller] = {}
        self.running: dict[str, asyncio.Task[None]] = {}
        self.completed: set[str] = set()  # targets polled once since their poller started

    def in_flight(self) -> dict[str, float]:
        """When each target's outstanding Admin request (if any) was sent."""
        return {name: poller.in_flight_since for name, poller in self.pollers.items()
                if poller.in_flight_since is not None}  # fmt: skip

    def sync(self, targets: tuple[TargetConfig, ...]) -> None:
        """Start, restart or stop pollers so there is one per polled target as configured."""
        wanted = {t.name: t for t in targets if t.admin_url}
        for name in list(self.pollers):
            if name not in wanted or wanted[name] != self.pollers[name].target:
                self.scheduler.remove_job(_job_id(name))
                del self.pollers[name]
                self.completed.discard(name)
                self.readiness.passed(_gate(name))
                task = self.running.pop(name, None)
                if task is not None:
                    task.cancel()  # a poll in flight still speaks with the old settings
                if name not in wanted:
                    self.telemetry.polls.pop(name, None)
        for name, target in wanted.items():
            if name not in self.pollers:
                self._start(target)

    def _start(self, target: TargetConfig) -> None:
        admin = self.clients.admin(target.name)
        if admin is None:  # the clients follow the same config; a target without admin_url
            log.error("poller_without_admin_client", server=target.name)
            return
        poller = Poller(target, admin, self.state, self.telemetry.poll(target.name))
        self.pollers[target.name] = poller
        gate = _gate(target.name)
        self.readiness.wait_for(gate)

        async def poll() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.running[target.name] = task
            try:
                await poller.poll()
            except asyncio.CancelledError:
                return  # stopping, or the target's settings changed, in the middle of a poll
            finally:
                if self.running.get(target.name) is task:
                    del self.running[target.name]
            if self.pollers.get(target.name) is poller:
                self.completed.add(target.name)
            self.readiness.passed(gate)

        self.scheduler.add_job(
            poll,
            "interval",
            seconds=target.poll_interval,
            id=_job_id(target.name),
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def polled_once(self, name: str) -> bool:
        """Whether the target's current poller has finished a poll (its state is rebuilt)."""
        return name in self.completed

    async def close(self) -> None:
        """Stop every poller and wait for polls in flight, before the HTTP session closes."""
        self.sync(())
        await stop_tasks(list(self.running.values()), POLLS_STOP_WITHIN)


def _job_id(name: str) -> str:
    return f"poll:{name}"


def _gate(name: str) -> str:
    return f"first poll of {name}"
