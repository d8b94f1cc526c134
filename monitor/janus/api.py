"""The Janus API client (the clients' API, not Admin): what remediation needs to act as a
client would — a session and VideoRoom handle of its own, and ``message`` requests.

Requests are JSON POSTs to ``janus_url`` (``/{session}`` and ``/{session}/{handle}`` for
those that need them), each with a fresh ``transaction`` and, when the target has one,
``apisecret``. Replies: ``success`` (with ``data`` or ``plugindata``), ``ack`` for
asynchronous plugin requests (their result goes to the session's long poll, which this
client does not read: the daemon learns the outcome from events or ``handle_info``), or
``error`` (janus-protocol.md §4.1). The one client of a target is shared (``clients``);
like the Admin client, it keeps at most one request outstanding at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from monitor.janus.errors import JanusUnavailable
from monitor.janus.wire import (
    JanusHttpClient,
    Scrubber,
    check_plugin_data,
    is_int,
    request_label,
)

__all__ = ["API", "JanusClient"]

API: Final = "Janus API"
VIDEOROOM: Final = "janus.plugin.videoroom"


class JanusClient(JanusHttpClient):
    """Janus API requests to one Janus server, one at a time."""

    api = API
    secret_field = "apisecret"  # sent only when the target has one

    # --- sessions and handles ------------------------------------------------------------------

    async def create_session(self) -> int:
        """A new session's id (it lives until destroyed or Janus's session_timeout)."""
        reply = await self._call("create", "", {}, expect="success")
        return _data_id(reply, "create")

    async def attach(self, session_id: int, plugin: str = VIDEOROOM, **fields: Any) -> int:
        """A new handle on ``plugin`` in the session; extra fields such as ``opaque_id``."""
        reply = await self._call(
            "attach", f"/{session_id}", {"plugin": plugin, **fields}, expect="success"
        )
        return _data_id(reply, "attach")

    async def keepalive(self, session_id: int) -> None:
        await self._call("keepalive", f"/{session_id}", {}, expect="ack")

    async def detach(self, session_id: int, handle_id: int) -> None:
        await self._call("detach", f"/{session_id}/{handle_id}", {}, expect="success")

    async def destroy(self, session_id: int) -> None:
        await self._call("destroy", f"/{session_id}", {}, expect="success")

    # --- plugin messages -----------------------------------------------------------------------

    async def message(
        self, session_id: int, handle_id: int, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A synchronous plugin request (VideoRoom ``list``, ``kick``, ``exists``...): the
        plugin's ``data``; PluginError when it carries ``error_code``."""
        reply = await self._call(
            "message", f"/{session_id}/{handle_id}", {"body": dict(body)}, expect="success",
            plugin_data=True,
        )  # fmt: skip
        data: dict[str, Any] = reply["plugindata"]["data"]  # checked by _call
        return data

    async def message_async(self, session_id: int, handle_id: int, body: Mapping[str, Any]) -> str:
        """An asynchronous plugin request (VideoRoom ``configure``...) on that handle: Janus
        acks it; its result goes to the session's owner (with this transaction, returned),
        and to event handlers."""
        ack = await self._call(
            "message", f"/{session_id}/{handle_id}", {"body": dict(body)}, expect="ack"
        )
        return str(ack["transaction"])

    async def configure_bitrate(self, session_id: int, handle_id: int, bitrate: int) -> None:
        """Set a VideoRoom publisher's REMB cap (bits/s) on its own handle (§4.3 configure):
        Janus sends the REMB at once and repeats it every 5 s."""
        await self.message_async(
            session_id, handle_id, {"request": "configure", "bitrate": bitrate}
        )

    # --- one request ---------------------------------------------------------------------------

    async def _call(
        self,
        verb: str,
        path: str,
        fields: Mapping[str, Any],
        *,
        expect: str,
        plugin_data: bool = False,
    ) -> dict[str, Any]:
        label = request_label(verb, fields, key="body" if verb == "message" else "request")

        def check(reply: dict[str, Any], scrub: Scrubber) -> dict[str, Any]:
            kind = reply.get("janus")
            if kind != expect:
                raise JanusUnavailable(label, f"reply is {kind!r}, not {expect!r}", api=API)
            if plugin_data:
                plugindata = reply.get("plugindata")
                data = plugindata.get("data") if isinstance(plugindata, dict) else None
                check_plugin_data(label, data, scrub, api=API, where="plugindata.data")
            return reply

        return await self._send(verb, label, self._url.rstrip("/") + path, fields, check)


def _data_id(reply: dict[str, Any], label: str) -> int:
    data = reply.get("data")
    value = data.get("id") if isinstance(data, dict) else None
    if not is_int(value) or value <= 0:
        raise JanusUnavailable(label, "reply has no positive data.id", api=API)
    return value
