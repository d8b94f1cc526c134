"""Errors of the Janus clients, and the error codes Janus answers with.

Janus answers HTTP 200 even for errors (janus-protocol.md §3.2): a core failure is
``{"janus": "error", "error": {"code": N, "reason": ...}}``, a plugin failure is a core
success whose plugin data has ``error_code`` (§4.1). ``str()`` of these never holds a secret.
"""

from __future__ import annotations

from typing import ClassVar

# Core error codes (janus/apierror.h) the daemon acts on.
SESSION_NOT_FOUND = 458
HANDLE_NOT_FOUND = 459
PLUGIN_NOT_FOUND = 460
UNAUTHORIZED = 403  # a wrong or missing admin_secret, apisecret or token (§3.2)
UNAUTHORIZED_PLUGIN = 405  # the token does not grant this plugin

# VideoRoom plugin error codes (JANUS_VIDEOROOM_ERROR_*, §4.4).
VIDEOROOM_JOIN_FIRST = 424
VIDEOROOM_NO_SUCH_ROOM = 426
VIDEOROOM_NO_SUCH_FEED = 428
VIDEOROOM_MISSING_ELEMENT = 429
VIDEOROOM_UNAUTHORIZED = 433


class JanusError(Exception):
    """A request to Janus that failed.

    ``api`` says which one ("Admin API" or "Janus API"), ``request`` is the request label (the
    verb, or ``<verb>:<plugin request>``), ``code`` the Janus error code when Janus gave one,
    ``reason`` a one-line explanation.
    """

    kind: ClassVar[str] = "error"

    def __init__(
        self, request: str, reason: str, *, code: int | None = None, api: str = "Admin API"
    ) -> None:
        self.request = request
        self.code = code
        self.reason = reason
        self.api = api
        where = f"{api} {request}"
        super().__init__(f"{where}: {reason}" if code is None else f"{where}: {code} {reason}")

    @property
    def label(self) -> str:
        """A short, bounded label for metrics: timeout, unavailable, janus_<code>, plugin_<code>."""
        return self.kind if self.code is None else f"{self.kind}_{self.code}"


class JanusUnavailable(JanusError):
    """No usable JSON answer: connection failed, HTTP status not 200, not JSON, wrong shape."""

    kind = "unavailable"

    def __init__(self, request: str, reason: str, *, api: str = "Admin API") -> None:
        super().__init__(request, reason, api=api)


class JanusTimeout(JanusUnavailable):
    """No answer within the client's timeout."""

    kind = "timeout"


class JanusRequestError(JanusError):
    """Janus refused the request: ``{"janus": "error", "error": {"code": N, "reason": ...}}``."""

    kind = "janus"

    def __init__(self, request: str, reason: str, *, code: int, api: str = "Admin API") -> None:
        super().__init__(request, reason, code=code, api=api)


class PluginError(JanusError):
    """The core accepted the request but the plugin's answer has ``error_code``.

    ``code`` is the plugin's error_code (VideoRoom: 426 no such room, 433 unauthorized, ...),
    or None when the answer has an ``error`` but no integer ``error_code``.
    """

    kind = "plugin"

    @property
    def label(self) -> str:
        return "plugin_error" if self.code is None else f"plugin_{self.code}"
