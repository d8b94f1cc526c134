"""The Janus Admin API client: the only code that talks to a target's Admin API.

Every request is one ``POST`` of JSON to the target's ``admin_url`` carrying ``janus`` (the
verb), a fresh random ``transaction``, ``admin_secret`` and, when given, ``session_id`` /
``handle_id`` in the body (janus-protocol.md §3.1-3.5). Janus answers HTTP 200 even for
errors, so failures are read from the JSON (§3.2), and a VideoRoom failure behind
``message_plugin`` arrives as a core ``success`` whose ``response`` has ``error_code`` (§4.1).

A client sends at most one request at a time: Janus runs every Admin request on its single
request thread, the same thread that serves client signalling (§3.7), so more in flight would
only queue real clients behind the monitor. The one client of a target is shared by the poller
and remediation (``clients``). Each finished request is reported to an observer as a
RequestRecord (verb, when sent, how long the HTTP exchange took, an error label) for the
request metrics and the poll budget. Secrets never reach an error (see ``wire``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from monitor.janus.wire import (
    JanusHttpClient,
    RequestRecord,
    Scrubber,
    ShapeError,
    check_plugin_data,
    checked,
    is_int,
    json_type,
    request_label,
)

__all__ = ["API", "AdminClient", "RequestRecord"]

_T = TypeVar("_T")

API: Final = "Admin API"


class AdminClient(JanusHttpClient):
    """Admin API requests to one Janus server, one at a time."""

    api = API
    secret_field = "admin_secret"
    send_empty_secret = True  # Janus answers 403 without it, which the operator must see

    # --- the verbs the monitor uses --------------------------------------------------------------

    async def request(
        self,
        verb: str,
        /,
        *,
        session_id: int | None = None,
        handle_id: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Send one Admin request; the whole reply when its ``janus`` is not ``error``.

        A ``message_plugin`` request also raises PluginError when the plugin's response
        carries an error (see message_plugin()).
        """
        return await self._call(verb, session_id, handle_id, fields, _whole_reply)

    async def info(self) -> dict[str, Any]:
        """The ``server_info`` reply (name, version_string, server-name, public-ip, ...)."""
        return await self._call("info", None, None, {}, _server_info)

    async def list_sessions(self) -> list[int]:
        """The ids of every live session."""
        return await self._call("list_sessions", None, None, {}, _id_list("sessions"))

    async def list_handles(self, session_id: int) -> list[int]:
        """The ids of the session's handles; AdminRequestError 458 if there is no such session."""
        return await self._call("list_handles", session_id, None, {}, _id_list("handles"))

    async def handle_info(
        self, session_id: int, handle_id: int, *, plugin_only: bool = False
    ) -> dict[str, Any]:
        """The reply's ``info`` object (§3.6); ``plugin_only`` skips the WebRTC part.

        AdminRequestError 458 / 459 when the session / handle does not exist.
        """
        fields: dict[str, Any] = {"plugin_only": True} if plugin_only else {}
        return await self._call("handle_info", session_id, handle_id, fields, _info_object)

    async def message_plugin(self, plugin: str, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request, e.g. ``("janus.plugin.videoroom", {"request": "list"})``.

        Returns the plugin's ``response`` object; PluginError when it has ``error_code``.
        """
        fields = {"plugin": plugin, "request": body}
        return await self._call("message_plugin", None, None, fields, _response_object)

    # --- one request -----------------------------------------------------------------------------

    async def _call(
        self,
        verb: str,
        session_id: int | None,
        handle_id: int | None,
        fields: Mapping[str, Any],
        extract: Callable[[dict[str, Any]], _T],
    ) -> _T:
        label = request_label(verb, fields)
        self._reserved(fields)
        if handle_id is not None and session_id is None:
            raise ValueError("handle_id needs session_id")
        ids: dict[str, Any] = {}
        if session_id is not None:
            ids["session_id"] = session_id
        if handle_id is not None:
            ids["handle_id"] = handle_id

        def check(reply: dict[str, Any], scrub: Scrubber) -> _T:
            if verb == "message_plugin":
                check_plugin_data(label, reply.get("response"), scrub, api=API, where="response")
            return checked(label, extract, reply, API)

        return await self._send(verb, label, self._url, {**ids, **fields}, check)


# --- reply shapes ------------------------------------------------------------------------------


def _whole_reply(reply: dict[str, Any]) -> dict[str, Any]:
    return reply


def _server_info(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("janus") != "server_info":
        raise ShapeError("reply janus is not server_info")  # server text is never quoted
    return reply


def _id_list(key: str) -> Callable[[dict[str, Any]], list[int]]:
    def extract(reply: dict[str, Any]) -> list[int]:
        ids = reply.get(key)
        if not isinstance(ids, list):
            raise ShapeError(f"reply {key} is {json_type(ids)}, not a list of ids")
        for item in ids:
            if not is_int(item) or item <= 0:
                raise ShapeError(f"reply {key} holds {json_type(item)}, not only positive ids")
        return ids

    return extract


def _info_object(reply: dict[str, Any]) -> dict[str, Any]:
    info = reply.get("info")
    if not isinstance(info, dict):
        raise ShapeError(f"reply info is {json_type(info)}, not an object")
    return info


def _response_object(reply: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = reply["response"]  # _check_plugin_response() made sure
    return response
