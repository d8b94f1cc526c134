"""The webhook receiver's log lines: one per batch, and never a secret anywhere."""

from __future__ import annotations

import base64

from structlog.testing import capture_logs

from tests.conftest import (
    make_config,
    run_daemon,
)
from tests.test_ingest import BODY, SERVER, basic, upto

# --- logs and secrets ----------------------------------------------------------------------

PASSWORD = "Evh-pa55word-7c1e"
ADMIN_SECRET = "adm1n-s3cret-9f2d"
ROOM_SECRET = "r00m-s3cret-4b8a"
SECRETS_CONFIG = f"""
webhook:
  basic_auth: {{username: evhuser, password: "{PASSWORD}"}}
targets:
  - name: {SERVER}
    admin_url: http://127.0.0.1:7088/admin
    admin_secret: "{ADMIN_SECRET}"
    room_secrets: {{"1234": "{ROOM_SECRET}"}}
"""


def _forbidden() -> list[str]:
    """Every secret, and the forms a request may carry it in."""
    return [
        PASSWORD,
        ADMIN_SECRET,
        ROOM_SECRET,
        base64.b64encode(f"evhuser:{PASSWORD}".encode()).decode(),
        base64.b64encode(PASSWORD.encode()).decode(),
    ]


async def test_one_log_line_per_post_and_no_secret_anywhere() -> None:
    """Each POST logs exactly one webhook_batch line with status, accepted and rejected, and
    no secret (even one sent in a failed login) shows in logs, the JSON API or /metrics."""
    wrong = [
        basic("evhuser", PASSWORD + "x"),
        basic("evhuser", PASSWORD.upper()),
        basic("admin", PASSWORD),
        basic("evhuser", ADMIN_SECRET),
        "Basic " + PASSWORD,
        "Bearer " + PASSWORD,
        PASSWORD,
    ]
    good = {"Authorization": basic("evhuser", PASSWORD)}
    posts: list[tuple[bytes, dict[str, str], int]] = [
        *((body, good, 200) for body in upto("10-media", "00033")),
        *((BODY, {"Authorization": value}, 401) for value in wrong),
        (BODY, {}, 401),
        (b"{not json", good, 400),
        (b"[1]", {**good, "Content-Encoding": "br"}, 415),
        (b'[{"type": 1}, 42]', good, 200),
    ]
    async for daemon in run_daemon(make_config(SECRETS_CONFIG)):
        with capture_logs() as logs:
            answers = []
            for body, headers, status in posts:
                got, answer, _ = await daemon.post_events(body, headers)
                assert got == status
                answers.append(answer)
        batches = [entry for entry in logs if entry["event"] == "webhook_batch"]
        assert len(batches) == len(posts)
        assert [entry["status"] for entry in batches] == [status for _, _, status in posts]
        for entry, answer in zip(batches, answers, strict=True):
            assert {"status", "accepted", "rejected"} <= entry.keys()
            if entry["status"] == 200:
                assert (entry["accepted"], entry["rejected"]) == (
                    answer["accepted"],
                    answer["rejected"],
                )
            else:
                assert (entry["accepted"], entry["rejected"]) == (0, 1)
        assert batches[-1]["rejected"] == 2
        texts = {"logs": repr(logs), "answers": repr(answers)}
        for path in ("/api/v1/servers", "/api/v1/rooms", "/api/v1/publishers", "/metrics", "/"):
            async with daemon.http.get(daemon.url(path)) as response:
                assert response.status == 200
                texts[path] = await response.text()
        assert "alice" in texts["/api/v1/publishers"]  # the API did show the state
        for where, text in texts.items():
            for secret in _forbidden():
                assert secret not in text, f"a secret shows in {where}"
