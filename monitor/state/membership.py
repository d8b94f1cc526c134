"""The state model's own appliers, registered at the MEMBERSHIP stage of the dispatch table."""

from __future__ import annotations

from monitor.decode.polls import (
    PolledHandle,
    PolledHandles,
    PolledInfo,
    PolledParticipants,
    PolledRooms,
    PolledSessions,
)
from monitor.decode.records import (
    ConnectionEvent,
    CoreEvent,
    HandleEvent,
    MediaStatsEvent,
    SessionEvent,
)
from monitor.decode.videoroom import (
    PublisherConfigured,
    PublisherGone,
    PublisherJoined,
    PublisherPublished,
    RoomCreated,
    RoomDestroyed,
    RoomEdited,
    SubscriberStreams,
    SubscriberUnsubscribed,
    SubscriberUp,
)
from monitor.state import from_events as events
from monitor.state import from_polls as polls
from monitor.state.dispatch import Router, Stage


def register(router: Router) -> None:
    m = Stage.MEMBERSHIP
    router.register(SessionEvent, m, events.apply_session)
    router.register(HandleEvent, m, events.apply_handle)
    router.register(ConnectionEvent, m, events.apply_connection)
    router.register(MediaStatsEvent, m, events.apply_media_stats)
    router.register(CoreEvent, m, events.apply_core)
    router.register(RoomCreated, m, events.apply_room_created)
    router.register(RoomEdited, m, events.apply_room_created)
    router.register(RoomDestroyed, m, events.apply_room_destroyed)
    router.register(PublisherJoined, m, events.apply_joined)
    router.register(PublisherConfigured, m, events.apply_configured)
    router.register(PublisherPublished, m, events.apply_published)
    router.register(PublisherGone, m, events.apply_publisher_gone)
    router.register(SubscriberStreams, m, events.apply_subscriber_streams)
    router.register(SubscriberUp, m, events.apply_subscriber_up)
    router.register(SubscriberUnsubscribed, m, events.apply_unsubscribed)
    router.register(PolledInfo, m, polls.apply_polled_info)
    router.register(PolledSessions, m, polls.apply_polled_sessions)
    router.register(PolledHandles, m, polls.apply_polled_handles)
    router.register(PolledHandle, m, polls.apply_polled_handle)
    router.register(PolledRooms, m, polls.apply_polled_rooms)
    router.register(PolledParticipants, m, polls.apply_polled_participants)
