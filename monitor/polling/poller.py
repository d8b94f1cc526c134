"""Admin API polling of one target, within its budget (janus-protocol.md §3.7).

Janus runs every Admin request except message_plugin on the thread that serves its clients'
signalling, so events stay the main source and the poller only confirms and repairs:

- every poll: ``info``, ``list_sessions`` and the VideoRoom ``list`` (rooms and their caps);
  only these decide ``janus_up``;
- then, while the poll lasts and the budget allows: ``list_handles`` of new sessions;
  ``listparticipants`` of rooms whose membership changed or is unconfirmed; a full
  ``handle_info`` of publishers whose media stats are stale (the bitrate fallback); then, in
  turns, ``list_handles`` of sessions due for confirmation (every handle is confirmed within
  ``reconcile_interval``) and ``handle_info`` (plugin_only) of handles events have not
  explained.

Pacing: requests go out in short bursts (one at a time, at most BURST_BUSY of outstanding
time), and after requests that kept Janus busy for d seconds the poller waits
d * (1 - budget) / budget, so requests are outstanding at most ``poll_budget`` of the time and
a slow Janus is asked less. Replies become records applied through ``State.apply``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from itertools import zip_longest
from typing import TypeVar

import structlog

from monitor.config import TargetConfig
from monitor.decode.polls import (
    PolledHandle,
    PolledHandles,
    PolledParticipants,
    PolledSessions,
    ReplyError,
    poll_event,
    read_handle,
    read_info,
    read_participants,
    read_rooms,
)
from monitor.decode.records import VIDEOROOM, Body
from monitor.janus.admin import AdminClient
from monitor.janus.errors import (
    HANDLE_NOT_FOUND,
    PLUGIN_NOT_FOUND,
    SESSION_NOT_FOUND,
    VIDEOROOM_NO_SUCH_ROOM,
    JanusError,
    JanusRequestError,
    PluginError,
)
from monitor.janus.wire import videoroom_id
from monitor.polling.report import PollLog, PollReport
from monitor.state import PUBLISHER, State
from monitor.telemetry import PollStats

POLL_SHARE = 0.9  # a poll stops starting requests after this share of poll_interval
# Requests go out back to back until they have kept Janus busy this long, then the poller
# pauses to pay for them. A lone request after a pause costs 2-3 times one in a burst
# (wake-ups on both sides), for the same work on Janus's request thread.
BURST_BUSY = 0.005
MAX_PAUSE = 20.0  # seconds: the longest pause one request (a timeout) can earn
MIN_MEDIA_STALE = 10.0  # seconds without media stats before a full handle_info is worth it

log = structlog.get_logger("monitor.poller")

T = TypeVar("T")


class TargetDown(Exception):
    """The target stopped answering in the middle of a poll."""


class PollOver(Exception):
    """The budget allows no more requests before this poll's end."""


class Poller:
    def __init__(
        self,
        target: TargetConfig,
        admin: AdminClient,
        state: State,
        stats: PollStats,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.target = target
        self.admin = admin
        self.state = state
        self.stats = stats
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.polls = 0
        self._poll_log = PollLog(stats.up)
        self.videoroom = True  # False once Janus says the plugin is not loaded
        self._next_request = 0.0
        self._deadline = 0.0
        self._asked_at = 0.0
        self.in_flight_since: float | None = None  # asked_at of a request not applied yet
        self._essential = False
        self._report = PollReport()

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def _allowance(self) -> float:
        """How far ahead of its budget a burst may run: the pause BURST_BUSY would earn."""
        budget = self.target.poll_budget
        return BURST_BUSY * (1.0 - budget) / budget

    # --- one poll ----------------------------------------------------------------------------

    async def poll(self) -> None:
        """One poll; never raises (the scheduler would only log it)."""
        started = self.clock()
        self._report = PollReport()
        self._deadline = started + POLL_SHARE * self.target.poll_interval
        if self.polls and self._next_request > self._deadline:
            # Earlier requests took so long that the budget allows none in this poll.
            self.stats.skipped += 1
            return
        error: str | None = None
        try:
            self._essential = True
            await self._essentials()
            self._essential = False
            self.stats.up = True
            self.stats.last_success = self.wall()
            error = await self._run_work()
        except PollOver:
            pass
        except TargetDown as exc:
            self.stats.up, error = False, str(exc)
        except Exception as exc:  # a bug must not stop polling
            log.exception("poll_failed", server=self.name)
            error = f"internal error: {exc.__class__.__name__}"
        finally:
            self.polls += 1
            duration = self.clock() - started
            self.stats.poll_duration.observe(duration)
            self._log(duration, error)

    async def _run_work(self) -> str | None:
        """The paced part of a poll. A failed request ends the poll but does not make the
        target down (only the essentials decide that); a bug in one step skips that step."""
        for step in self._work():
            try:
                await step()
            except (JanusError, ReplyError) as exc:
                return f"{exc.__class__.__name__}: {exc}"
            except PollOver:
                raise
            except Exception:
                log.exception("poll_step_failed", server=self.name)
        return None

    def _log(self, duration: float, error: str | None) -> None:
        self._poll_log.log(self, self.state.servers.get(self.name), duration, error)

    # --- requests ----------------------------------------------------------------------------

    def _apply(self, body: Body) -> None:
        self.state.apply(poll_event(self.name, body), self.clock())
        self.in_flight_since = None  # the answer is in state: its tombstones served

    async def _paced(self) -> float:
        """Wait until the budget allows the next request; returns when it is sent.

        The few requests every poll starts with go out at once (their cost is paid by the
        pauses after them); the others go in bursts and wait between them, and none starts
        past the poll's end.
        """
        now = self.clock()
        if self._essential:
            return now
        owed = self._next_request - now
        if owed <= self._allowance:
            return now  # within the burst
        # Pay the whole debt at once, so the next requests go out as a burst again.
        if self._next_request >= self._deadline:
            raise PollOver
        await self.sleep(owed)
        return self.clock()

    def _spent(self, asked_at: float) -> None:
        now = self.clock()
        busy = max(now - asked_at, 0.0)
        budget = self.target.poll_budget
        # A timeout would otherwise buy minutes of silence.
        pause = min(busy * (1.0 - budget) / budget, max(MAX_PAUSE, self.target.poll_interval))
        self._next_request = max(self._next_request, now) + pause
        self._report.requests += 1
        self._report.busy += busy

    async def _ask(self, call: Callable[[], Awaitable[T]]) -> tuple[float, T]:
        """Send one paced request; returns when it was sent and the answer."""
        asked_at = self._asked_at = await self._paced()
        # Until its answer is applied, a destroyed id it may still list needs its tombstone.
        self.in_flight_since = asked_at
        try:
            return asked_at, await call()
        except BaseException:
            self.in_flight_since = None
            raise
        finally:
            self._spent(asked_at)

    async def _essentials(self) -> None:
        """info, list_sessions, VideoRoom list: any failure here means the target is down."""
        try:
            _, reply = await self._ask(self.admin.info)
            info = read_info(reply)
            self._apply(info)
            if info.info.plugins:
                self.videoroom = VIDEOROOM in info.info.plugins
            asked_at, sessions = await self._ask(self.admin.list_sessions)
            self._apply(PolledSessions(frozenset(sessions), asked_at))
            if self.videoroom:
                await self._rooms()
        except (JanusError, ReplyError) as exc:
            raise TargetDown(f"{exc.__class__.__name__}: {exc}") from None

    async def _rooms(self) -> None:
        try:
            asked_at, response = await self._ask(
                partial(self.admin.message_plugin, VIDEOROOM, {"request": "list"})
            )
        except JanusRequestError as exc:
            if exc.code != PLUGIN_NOT_FOUND:
                raise
            self.videoroom = False
            log.info("videoroom_not_loaded", server=self.name)
            return
        except PluginError as exc:
            log.warning("videoroom_list_failed", server=self.name, error=str(exc))
            return
        try:
            rooms = read_rooms(response, asked_at)
        except ReplyError as exc:  # the VideoRoom answered oddly; Janus itself is up
            log.warning("videoroom_list_unreadable", server=self.name, error=str(exc))
            return
        self._apply(rooms)

    async def _list_handles(self, session_id: int) -> None:
        try:
            asked_at, listed = await self._ask(partial(self.admin.list_handles, session_id))
            handles: frozenset[int] | None = frozenset(listed)
        except JanusRequestError as exc:
            if exc.code != SESSION_NOT_FOUND:
                raise
            asked_at, handles = self._asked_at, None
        self._report.handles_listed += len(handles or ())
        self._apply(PolledHandles(session_id, handles, asked_at))

    async def _handle_info(self, session_id: int, handle_id: int, *, plugin_only: bool) -> None:
        call = partial(self.admin.handle_info, session_id, handle_id, plugin_only=plugin_only)
        try:
            asked_at, info = await self._ask(call)
        except JanusRequestError as exc:
            if exc.code not in (SESSION_NOT_FOUND, HANDLE_NOT_FOUND):
                raise
            gone = PolledHandle(session_id, handle_id, exists=False, asked_at=self._asked_at)
            self._apply(gone)
            return
        if plugin_only:
            self._report.handles_explained += 1
        else:
            self._report.media_fetched += 1
        self._apply(read_handle(session_id, handle_id, info, asked_at))

    async def _participants(self, room: str) -> None:
        server = self.state.servers.get(self.name)
        wire = videoroom_id(room, server.string_ids if server is not None else None)
        try:
            asked_at, response = await self._ask(
                partial(
                    self.admin.message_plugin,
                    VIDEOROOM,
                    {"request": "listparticipants", "room": wire},
                )
            )
        except PluginError as exc:
            if exc.code == VIDEOROOM_NO_SUCH_ROOM:
                self._apply(PolledParticipants(room, False, (), self._asked_at))
            else:
                log.warning("listparticipants_failed", server=self.name, room=room, error=str(exc))
            return
        self._report.rooms_checked += 1
        self._apply(read_participants(room, response, asked_at))

    # --- what to ask ---------------------------------------------------------------------------

    def _work(self) -> Iterator[Callable[[], Awaitable[None]]]:
        """Requests for this poll, chosen from state as it is when each group starts.

        New sessions are listed first, then rooms and stale publisher stats (few), then
        sessions due for confirmation alternate with handles events have not explained, so
        that neither starves the other when the budget is short.
        """
        server = self.state.servers.get(self.name)
        if server is None:
            return
        now = self.clock()
        interval, reconcile = self.target.poll_interval, self.target.reconcile_interval

        new = sorted((s for s in server.sessions.values() if s.listed_at is None),
                     key=lambda s: s.since)  # fmt: skip
        for session in new:
            yield partial(self._list_handles, session.session_id)

        if self.videoroom:
            for room in list(server.rooms.values()):
                if (
                    room.members_changed
                    or room.unlisted
                    or room.members_at is None
                    or now - room.members_at >= reconcile
                ):
                    yield partial(self._participants, room.room)

        stale = now - max(MIN_MEDIA_STALE, 2 * interval)
        for publisher in list(server.publishers.values()):
            media_of = server.handle(publisher.handle) if publisher.handle else None
            if (
                publisher.publishing
                and media_of is not None
                and media_of.role == PUBLISHER
                and (media_of.media_seen is None or media_of.media_seen < stale)
            ):
                yield partial(
                    self._handle_info, media_of.session_id, media_of.handle_id, plugin_only=False
                )

        # Sessions whose last listing would be older than reconcile_interval by the next
        # poll, oldest first; and handles events have not explained (given one poll interval
        # to do it first).
        due_at = now - (reconcile - interval)
        due = sorted(
            (s for s in server.sessions.values()
             if s.listed_at is not None and s.listed_at <= due_at),
            key=lambda s: s.listed_at or 0.0,
        )  # fmt: skip
        settle = now - interval
        unexplained = [h for h in server.handles() if not h.explained and h.since <= settle]
        for session, handle in zip_longest(due, unexplained):
            if session is not None:
                yield partial(self._list_handles, session.session_id)
            if handle is not None:
                yield partial(
                    self._handle_info, handle.session_id, handle.handle_id, plugin_only=True
                )
