"""The Janus Admin API client: the only code that talks to a target's Admin API.

Every request is one ``POST`` of JSON to the target's ``admin_url`` carrying ``janus`` (the
verb), a fresh random ``transaction``, ``admin_secret`` and, when given, ``session_id`` /
``handle_id`` in the body (janus-protocol.md §3.1-3.5). Janus answers HTTP 200 even for
errors, so failures are read from the JSON (§3.2), and a VideoRoom failure behind
``message_plugin`` arrives as a core ``success`` whose ``response`` has ``error_code`` (§4.1).

A client sends at most one request at a time: Janus runs every Admin request on its single
request thread, the same thread that serves client signalling (§3.7), so more in flight would
only queue real clients behind the monitor. Each finished request is reported to an observer
as a RequestRecord (verb, when sent, how long the HTTP exchange took, an error label) for the
request metrics and the poll budget.

Secrets: the admin_secret (and credential-looking values sent to a plugin, such as a room
``secret``) are revealed only into the request body. Text that comes back from the server and
goes into an exception is scrubbed of them first, bodies that are not JSON are never quoted,
and exceptions are raised with no chained cause, so a reply that echoes the request cannot
carry a secret into ``str(exc)``, a log line or a traceback.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeGuard, TypeVar

import aiohttp
import orjson

from monitor.config import Secret

__all__ = [
    "AdminClient",
    "AdminError",
    "AdminRequestError",
    "AdminTimeout",
    "AdminUnavailable",
    "PluginError",
    "RequestRecord",
]

_T = TypeVar("_T")

RESERVED_FIELDS: Final = frozenset({"janus", "transaction", "admin_secret"})
"""Body fields the client always sets itself; passing them as ``**fields`` is a bug."""

SENSITIVE_KEYS: Final = frozenset(
    {"admin_secret", "secret", "new_secret", "admin_key", "pin", "new_pin", "token", "apisecret"}
)
"""String values under these keys (top level or inside a plugin request) are scrubbed from
any server text that ends up in an exception."""

MAX_REASON_CHARS: Final = 300
REDACTED: Final = "<redacted>"


# --- errors -------------------------------------------------------------------------------------


class AdminError(Exception):
    """An Admin API request that failed; ``str()`` never contains a secret.

    ``request`` is the request label (the verb, or ``message_plugin:<plugin request>``),
    ``code`` the Janus error code when Janus gave one, ``reason`` a one-line explanation.
    """

    kind: ClassVar[str] = "error"

    def __init__(self, request: str, reason: str, *, code: int | None = None) -> None:
        self.request = request
        self.code = code
        self.reason = reason
        where = f"Admin API {request}"
        super().__init__(f"{where}: {reason}" if code is None else f"{where}: {code} {reason}")

    @property
    def label(self) -> str:
        """A short, bounded label for metrics: timeout, unavailable, janus_<code>, plugin_<code>."""
        return self.kind if self.code is None else f"{self.kind}_{self.code}"


class AdminUnavailable(AdminError):
    """No usable JSON answer: connection failed, HTTP status not 200, not JSON, wrong shape."""

    kind = "unavailable"

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(request, reason)


class AdminTimeout(AdminUnavailable):
    """No answer within the client's timeout."""

    kind = "timeout"


class AdminRequestError(AdminError):
    """Janus refused the request: ``{"janus": "error", "error": {"code": N, "reason": ...}}``."""

    kind = "janus"

    def __init__(self, request: str, reason: str, *, code: int) -> None:
        super().__init__(request, reason, code=code)


class PluginError(AdminError):
    """``message_plugin`` succeeded at the core but the plugin's response has ``error_code``.

    ``code`` is the plugin's error_code (VideoRoom: 426 no such room, 433 unauthorized, ...),
    or None when the response has an ``error`` but no integer ``error_code``.
    """

    kind = "plugin"

    @property
    def label(self) -> str:
        return "plugin_error" if self.code is None else f"plugin_{self.code}"


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished Admin request, for the request metrics and the poll budget."""

    request: str
    """The verb, or ``message_plugin:<plugin request>`` (e.g. ``message_plugin:list``)."""
    started: float
    """``clock()`` when the request was sent (after waiting for the client's lock)."""
    duration: float
    """Seconds from sending until answered or failed: the HTTP exchange only."""
    error: str | None
    """None on success, else ``timeout``, ``unavailable``, ``janus_<code>``, ``plugin_<code>``
    (``plugin_error`` without a code) or ``cancelled`` (the caller gave up)."""


Observer = Callable[[RequestRecord], None]


# --- the client --------------------------------------------------------------------------------


class AdminClient:
    """Admin API requests to one Janus server, one at a time."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        secret: Secret,
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self._http = http
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._observer = observer
        self._lock = asyncio.Lock()
        self._busy = False

    def __repr__(self) -> str:
        return f"AdminClient({self._url!r}, busy={self._busy})"

    @property
    def url(self) -> str:
        return self._url

    @property
    def busy(self) -> bool:
        """True while a request is outstanding at Janus (sent and not yet answered)."""
        return self._busy

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
        reserved = RESERVED_FIELDS.intersection(fields)
        if reserved:
            raise ValueError(f"the client sets {', '.join(sorted(reserved))} itself")
        if handle_id is not None and session_id is None:
            raise ValueError("handle_id needs session_id")
        scrub = _Scrubber(self._secret, fields)
        async with self._lock:
            transaction = secrets.token_hex(12)
            body: dict[str, Any] = {
                "janus": verb,
                "transaction": transaction,
                "admin_secret": self._secret.reveal(),
            }
            if session_id is not None:
                body["session_id"] = session_id
            if handle_id is not None:
                body["handle_id"] = handle_id
            body.update(fields)
            payload = _Body(orjson.dumps(body))
            del body  # the only other object holding the revealed secret

            error: str | None = "internal"
            self._busy = True
            started = self._clock()
            try:
                reply = await self._exchange(label, payload, transaction, scrub)
                if verb == "message_plugin":
                    _check_plugin_response(label, reply, scrub)
                result = _checked(label, extract, reply)
                error = None
                return result
            except AdminError as exc:
                error = exc.label
                raise
            except asyncio.CancelledError:
                error = "cancelled"
                raise
            finally:
                duration = self._clock() - started
                self._busy = False
                if self._observer is not None:
                    self._observer(RequestRecord(label, started, duration, error))

    async def _exchange(
        self, label: str, payload: _Body, transaction: str, scrub: _Scrubber
    ) -> dict[str, Any]:
        """POST payload; the decoded reply, checked for shape, transaction and core errors.

        Failures are built inside the ``except`` blocks but raised outside them, so the
        exception has no ``__context__`` (an aiohttp or orjson error holding the body).
        """
        failure: AdminError | None = None
        status, status_reason, raw = 0, "", b""
        try:
            async with self._http.post(
                self._url,
                data=payload,
                headers={"Content-Type": "application/json"},
                timeout=self._client_timeout,
                allow_redirects=False,
            ) as response:
                status, status_reason = response.status, response.reason or ""
                raw = await response.read()
        except TimeoutError:
            failure = AdminTimeout(label, f"no answer within {self._timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            failure = AdminUnavailable(label, scrub(f"{type(exc).__name__}: {exc}"))
        if failure is not None:
            raise failure
        if status != 200:
            raise AdminUnavailable(label, scrub(f"HTTP {status} {status_reason}".rstrip()))

        decoded: Any = None
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            failure = AdminUnavailable(label, f"reply is not JSON ({len(raw)} bytes)")
        if failure is not None:
            raise failure
        if not isinstance(decoded, dict):
            raise AdminUnavailable(label, f"reply is a JSON {_json_type(decoded)}, not an object")
        reply: dict[str, Any] = decoded
        kind = reply.get("janus")
        if not isinstance(kind, str):
            raise AdminUnavailable(label, "reply has no janus field")
        if reply.get("transaction") != transaction:
            raise AdminUnavailable(label, "reply transaction does not match the request's")
        if kind == "error":
            error = reply.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            if not _is_int(code):
                raise AdminUnavailable(label, "error reply without an integer error.code")
            reason = error.get("reason") if isinstance(error, dict) else None
            text = scrub(reason) if isinstance(reason, str) else "(no reason given)"
            raise AdminRequestError(label, text, code=code)
        return reply


def request_label(verb: str, fields: Mapping[str, Any]) -> str:
    """``verb``, or ``message_plugin:<request>`` when a plugin request names itself."""
    if verb == "message_plugin":
        inner = fields.get("request")
        name = inner.get("request") if isinstance(inner, dict) else None
        if isinstance(name, str) and name:
            return f"message_plugin:{name[:40]}"
    return verb


# --- reply checks ------------------------------------------------------------------------------


class _ShapeError(Exception):
    """A reply that is JSON but not shaped as documented; becomes AdminUnavailable."""


def _checked(label: str, extract: Callable[[dict[str, Any]], _T], reply: dict[str, Any]) -> _T:
    problem = ""
    try:
        return extract(reply)
    except _ShapeError as exc:
        problem = str(exc)
    raise AdminUnavailable(label, problem)  # outside the except: no __context__


def _whole_reply(reply: dict[str, Any]) -> dict[str, Any]:
    return reply


def _server_info(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("janus") != "server_info":
        raise _ShapeError("reply janus is not server_info")  # server text is never quoted
    return reply


def _id_list(key: str) -> Callable[[dict[str, Any]], list[int]]:
    def extract(reply: dict[str, Any]) -> list[int]:
        ids = reply.get(key)
        if not isinstance(ids, list):
            raise _ShapeError(f"reply {key} is {_json_type(ids)}, not a list of ids")
        for item in ids:
            if not _is_int(item) or item <= 0:
                raise _ShapeError(f"reply {key} holds {_json_type(item)}, not only positive ids")
        return ids

    return extract


def _info_object(reply: dict[str, Any]) -> dict[str, Any]:
    info = reply.get("info")
    if not isinstance(info, dict):
        raise _ShapeError(f"reply info is {_json_type(info)}, not an object")
    return info


def _response_object(reply: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = reply["response"]  # _check_plugin_response() made sure
    return response


def _check_plugin_response(label: str, reply: dict[str, Any], scrub: _Scrubber) -> None:
    """A message_plugin reply must carry a ``response`` object without an error in it."""
    response = reply.get("response")
    if not isinstance(response, dict):
        raise AdminUnavailable(label, f"reply response is {_json_type(response)}, not an object")
    code = response.get("error_code")
    reason = response.get("error")
    if code is None and reason is None:
        return
    text = scrub(reason) if isinstance(reason, str) else "(no error text)"
    raise PluginError(label, text, code=code if _is_int(code) else None)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "missing or null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- secret handling ----------------------------------------------------------------------------


class _Body(bytes):
    """The encoded request (it holds the admin_secret): its repr never shows the bytes, so a
    traceback renderer that prints frame locals cannot leak it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)}-byte Admin request body>"

    __str__ = __repr__


class _Scrubber:
    """Removes the secrets sent with one request from text that came back from the server."""

    __slots__ = ("_values",)

    def __init__(self, secret: Secret, fields: Mapping[str, Any]) -> None:
        found = {secret.reveal(), *_sensitive_values(fields)}
        values: set[str] = set()
        for value in found:
            if value:
                values.add(value)
                # The value as it appears inside a JSON string (UTF-8 or ASCII-escaped), should
                # a server echo the request raw.
                values.add(orjson.dumps(value).decode()[1:-1])
                values.add(json.dumps(value)[1:-1])
        # Longest first, so a secret that contains another is removed whole.
        self._values = sorted(values, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"_Scrubber({len(self._values)} values)"

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        text = " ".join(text.split())  # one line
        return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def _sensitive_values(fields: Mapping[str, Any]) -> Iterable[str]:
    """String values under SENSITIVE_KEYS, at the top level and one object level down."""
    for key, value in fields.items():
        if key in SENSITIVE_KEYS and isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for inner_key, inner in value.items():
                if inner_key in SENSITIVE_KEYS and isinstance(inner, str):
                    yield inner
