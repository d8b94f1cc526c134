"""One Admin API client and one Janus API client per target, built by the app and shared by
the poller and remediation, so each Janus sees at most one request of each kind at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from monitor.config import TargetConfig
from monitor.janus.admin import AdminClient
from monitor.janus.api import JanusClient
from monitor.janus.wire import Observer

ObserverFor = Callable[[str], Observer | None]
"""Target name -> what to tell about each finished Admin request (metrics, poll budget)."""


@dataclass(frozen=True, slots=True)
class TargetClients:
    target: TargetConfig
    admin: AdminClient | None  # with admin_url
    api: JanusClient | None  # with janus_url


def request_timeout(target: TargetConfig) -> float:
    """Admin and API requests give up after the poll interval, between 1 s and 5 s."""
    return max(1.0, min(5.0, target.poll_interval))


class JanusClients:
    """The clients of every target, kept in step with the config."""

    def __init__(
        self, http: aiohttp.ClientSession, admin_observer: ObserverFor = lambda name: None
    ) -> None:
        self._http = http
        self._admin_observer = admin_observer
        self._by_name: dict[str, TargetClients] = {}

    def sync(self, targets: tuple[TargetConfig, ...]) -> None:
        """Rebuild the clients of targets whose settings changed; drop removed targets'."""
        wanted = {t.name: t for t in targets}
        for name in [n for n in self._by_name if n not in wanted]:
            del self._by_name[name]
        for name, target in wanted.items():
            known = self._by_name.get(name)
            if known is None or known.target != target:
                self._by_name[name] = self._build(target)

    def _build(self, target: TargetConfig) -> TargetClients:
        timeout = request_timeout(target)
        admin = (
            AdminClient(
                self._http,
                target.admin_url,
                target.admin_secret,
                timeout=timeout,
                observer=self._admin_observer(target.name),
            )
            if target.admin_url
            else None
        )
        api = (
            JanusClient(self._http, target.janus_url, target.api_secret, timeout=timeout)
            if target.janus_url
            else None
        )
        return TargetClients(target, admin, api)

    def admin(self, name: str) -> AdminClient | None:
        clients = self._by_name.get(name)
        return clients.admin if clients else None

    def api(self, name: str) -> JanusClient | None:
        clients = self._by_name.get(name)
        return clients.api if clients else None
