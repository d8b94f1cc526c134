"""What both Janus clients share: one JSON exchange over HTTP, request records for the
observer, reply shape checks, and the handling that keeps secrets out of errors.

Secrets (admin_secret, apisecret, room secrets sent to a plugin) are revealed only into the
request body. Text that comes back from the server and goes into an exception is scrubbed of
them first, bodies that are not JSON are never quoted, and exceptions are raised with no
chained cause, so a reply that echoes the request cannot carry a secret into ``str(exc)``, a
log line or a traceback.
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
from monitor.janus.errors import (
    JanusError,
    JanusRequestError,
    JanusTimeout,
    JanusUnavailable,
    PluginError,
)

_T = TypeVar("_T")

SENSITIVE_KEYS: Final = frozenset(
    {"admin_secret", "secret", "new_secret", "admin_key", "pin", "new_pin", "token", "apisecret"}
)
"""String values under these keys (top level or inside a plugin request) are scrubbed from
any server text that ends up in an exception."""

MAX_REASON_CHARS: Final = 300
REDACTED: Final = "<redacted>"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished request, for the request metrics and the poll budget."""

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


class JanusHttpClient:
    """Requests to one Janus server over one HTTP API, one at a time (both APIs share Janus's
    request thread, janus-protocol.md §3.7). Subclasses name the API and its secret field."""

    api: ClassVar[str]
    secret_field: ClassVar[str]
    send_empty_secret: ClassVar[bool] = False

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
        self._limit = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._observer = observer
        self._lock = asyncio.Lock()
        self._busy = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r}, busy={self._busy})"

    @property
    def url(self) -> str:
        return self._url

    @property
    def busy(self) -> bool:
        """True while a request is outstanding at Janus (sent and not yet answered)."""
        return self._busy

    def _reserved(self, fields: Mapping[str, Any]) -> None:
        reserved = {"janus", "transaction", self.secret_field}.intersection(fields)
        if reserved:
            raise ValueError(f"the client sets {', '.join(sorted(reserved))} itself")

    async def _send(
        self,
        verb: str,
        label: str,
        url: str,
        fields: Mapping[str, Any],
        check: Callable[[dict[str, Any], Scrubber], _T],
    ) -> _T:
        """One request; ``check`` reads the reply (and may raise) before it is recorded, so
        the observer's error label covers plugin errors too."""
        self._reserved(fields)
        scrub = Scrubber(self._secret, fields)
        async with self._lock:
            transaction = secrets.token_hex(12)
            body: dict[str, Any] = {"janus": verb, "transaction": transaction}
            if self._secret or self.send_empty_secret:
                body[self.secret_field] = self._secret.reveal()
            body.update(fields)
            payload = SecretBody(orjson.dumps(body))
            del body  # the only other object holding the revealed secret
            error: str | None = "internal"
            self._busy = True
            started = self._clock()
            try:
                reply = await post_json(
                    self._http, url, payload, transaction, label=label, api=self.api,
                    scrub=scrub, limit=self._limit,
                )  # fmt: skip
                result = check(reply, scrub)
                error = None
                return result
            except JanusError as exc:
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


def videoroom_id(value: str, string_ids: bool | None) -> int | str:
    """A room or participant id as the VideoRoom takes it: an integer unless the plugin runs
    with string_ids (state keeps every id as a string, janus-protocol.md §6)."""
    if string_ids is not True and value.isdecimal() and len(value) <= 20 and int(value) < 2**64:
        return int(value)
    return value


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    payload: SecretBody,
    transaction: str,
    *,
    label: str,
    api: str,
    scrub: Scrubber,
    limit: aiohttp.ClientTimeout,
) -> dict[str, Any]:
    """POST payload; the decoded reply, checked for shape, transaction and core errors.

    Failures are built inside the ``except`` blocks but raised outside them, so the
    exception has no ``__context__`` (an aiohttp or orjson error holding the body).
    """
    failure: JanusUnavailable | None = None
    status, status_reason, raw = 0, "", b""
    try:
        async with http.post(
            url,
            data=payload,
            headers={"Content-Type": "application/json"},
            timeout=limit,
            allow_redirects=False,
        ) as response:
            status, status_reason = response.status, response.reason or ""
            raw = await response.read()
    except TimeoutError:
        failure = JanusTimeout(label, f"no answer within {limit.total:g}s", api=api)
    except (aiohttp.ClientError, OSError) as exc:
        failure = JanusUnavailable(label, scrub(f"{type(exc).__name__}: {exc}"), api=api)
    if failure is not None:
        raise failure
    if status != 200:
        raise JanusUnavailable(label, scrub(f"HTTP {status} {status_reason}".rstrip()), api=api)

    decoded: Any = None
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        failure = JanusUnavailable(label, f"reply is not JSON ({len(raw)} bytes)", api=api)
    if failure is not None:
        raise failure
    if not isinstance(decoded, dict):
        raise JanusUnavailable(
            label, f"reply is a JSON {json_type(decoded)}, not an object", api=api
        )
    reply: dict[str, Any] = decoded
    kind = reply.get("janus")
    if not isinstance(kind, str):
        raise JanusUnavailable(label, "reply has no janus field", api=api)
    if reply.get("transaction") != transaction:
        raise JanusUnavailable(label, "reply transaction does not match the request's", api=api)
    if kind == "error":
        error = reply.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if not is_int(code):
            raise JanusUnavailable(label, "error reply without an integer error.code", api=api)
        reason = error.get("reason") if isinstance(error, dict) else None
        text = scrub(reason) if isinstance(reason, str) else "(no reason given)"
        raise JanusRequestError(label, text, code=code, api=api)
    return reply


def request_label(verb: str, fields: Mapping[str, Any], key: str = "request") -> str:
    """``verb``, or ``verb:<request>`` when a plugin request names itself."""
    if verb in ("message_plugin", "message"):
        inner = fields.get(key)
        name = inner.get("request") if isinstance(inner, dict) else None
        if isinstance(name, str) and name:
            return f"{verb}:{name[:40]}"
    return verb


# --- reply checks ------------------------------------------------------------------------------


class ShapeError(Exception):
    """A reply that is JSON but not shaped as documented; becomes JanusUnavailable."""


def checked(
    label: str, extract: Callable[[dict[str, Any]], _T], reply: dict[str, Any], api: str
) -> _T:
    problem = ""
    try:
        return extract(reply)
    except ShapeError as exc:
        problem = str(exc)
    raise JanusUnavailable(label, problem, api=api)  # outside the except: no __context__


def check_plugin_data(
    label: str, data: Any, scrub: Scrubber, *, api: str, where: str
) -> dict[str, Any]:
    """A plugin's answer object (``response`` of message_plugin, ``plugindata.data`` of a
    Janus API message) must be an object without an error in it."""
    if not isinstance(data, dict):
        raise JanusUnavailable(label, f"reply {where} is {json_type(data)}, not an object", api=api)
    code = data.get("error_code")
    reason = data.get("error")
    if code is None and reason is None:
        return data
    text = scrub(reason) if isinstance(reason, str) else "(no error text)"
    raise PluginError(label, text, code=code if is_int(code) else None, api=api)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: Any) -> str:
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


class SecretBody(bytes):
    """The encoded request (it holds the admin_secret): its repr never shows the bytes, so a
    traceback renderer that prints frame locals cannot leak it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)}-byte Janus request body>"

    __str__ = __repr__


class Scrubber:
    """Removes the secrets sent with one request from text that came back from the server."""

    __slots__ = ("_values",)

    def __init__(self, secret: Secret, fields: Mapping[str, Any]) -> None:
        found = {secret.reveal(), *sensitive_values(fields)}
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
        return f"Scrubber({len(self._values)} values)"

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        text = " ".join(text.split())  # one line
        return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def sensitive_values(fields: Mapping[str, Any]) -> Iterable[str]:
    """String values under SENSITIVE_KEYS, at the top level and one object level down."""
    for key, value in fields.items():
        if key in SENSITIVE_KEYS and isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for inner_key, inner in value.items():
                if inner_key in SENSITIVE_KEYS and isinstance(inner, str):
                    yield inner
