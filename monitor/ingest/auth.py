"""HTTP Basic credentials, checked in constant time (sampleevh backend_user/backend_pwd)."""

from __future__ import annotations

import base64
import binascii
import hmac

from monitor.config import BasicAuth

CHALLENGE = {"WWW-Authenticate": 'Basic realm="janus-monitor", charset="UTF-8"'}


def authorized(header: str | None, expected: BasicAuth | None) -> bool:
    if expected is None:
        return True
    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    wanted = f"{expected.username}:{expected.password.reveal()}".encode()
    # One comparison over the whole "user:password", so timing says nothing about either part.
    return hmac.compare_digest(given, wanted)
