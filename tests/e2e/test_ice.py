"""ICE failures on a real Janus 1.1.2, made the way the 30-ice-* fixtures were (their README):

- the offer's only candidate on a closed 127.0.0.1 port, Janus's candidates ignored -> ``ice``;
- the offer's only candidate an mDNS ``.local`` name (Janus drops it) -> ``stalled``,
  ``client_mdns_only`` (setup_timeout 3 s here);
- Janus started with a private nat_1_1_mapping it only advertises (the client strips it and
  never sends there) -> ``dtls``, ``server_private_candidates``.

Every packet stays on 127.0.0.1 inside the lab namespace.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lab.janus import free_port
from lab.webrtc import rewrite_candidates, without_candidates
from tests.conftest import sample
from tests.e2e.conftest import JanusLab, PublishFactory

pytestmark = pytest.mark.e2e

FAILURES = "janus_ice_failures_total"


def failures(samples: Any, lab: JanusLab) -> dict[tuple[str, str], float]:
    out = {}
    for (name, labels), value in samples.items():
        if name == FAILURES and dict(labels)["server"] == lab.name:
            out[(dict(labels)["stage"], dict(labels)["cause"])] = value
    return out


async def failure_counted(
    lab: JanusLab, expected: dict[tuple[str, str], float], within: float
) -> None:
    async def check() -> None:
        assert failures(await lab.samples(), lab) == expected

    await lab.eventually(check, f"ICE failures {expected}", within=within)


async def test_a_dead_remote_port_is_an_ice_failure(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """Janus checks a closed port and hangs up "ICE failed" (about 13 s): one ice failure."""
    dead = free_port()

    def to_dead_port(fields: list[str]) -> list[str]:
        return [*fields[:5], str(dead), *fields[6:]]

    await publish(
        "deadport",
        offer_filter=lambda sdp: rewrite_candidates(sdp, to_dead_port),
        answer_filter=without_candidates,
        wait_webrtcup=False,
    )
    await failure_counted(janus_lab, {("ice", "server_private_candidates"): 1.0}, within=25.0)
    samples = await janus_lab.samples()
    hangups = sample(
        samples, "janus_webrtc_hangups_total", server=janus_lab.name, reason="ICE failed"
    )
    assert hangups == 1
    assert (
        sample(samples, "janus_ice_state_changes_total", server=janus_lab.name, state="failed") or 0
    ) >= 1


@pytest.mark.parametrize("daemon_settings", [{"signals": {"setup_timeout": "3s"}}], indirect=True)
async def test_an_mdns_only_client_stalls(janus_lab: JanusLab, publish: PublishFactory) -> None:
    """Janus drops the .local candidate and says nothing more (the client does not check
    Janus's candidates either): after setup_timeout the attempt is counted stalled, caused by
    the mDNS-only client; its candidate shows as mdns."""
    name = f"{uuid.uuid4()}.local"
    await publish(
        "mdns",
        offer_filter=lambda sdp: rewrite_candidates(sdp, lambda f: [*f[:4], name, *f[5:]]),
        answer_filter=without_candidates,  # else aiortc's checks reach Janus (peer-reflexive)
        wait_webrtcup=False,
    )
    await failure_counted(janus_lab, {("stalled", "client_mdns_only"): 1.0}, within=10.0)
    samples = await janus_lab.samples()
    mdns = sample(samples, "janus_ice_candidates_total", server=janus_lab.name, side="remote",
                  type="host", scope="mdns")  # fmt: skip
    assert mdns is not None and mdns >= 1


@pytest.mark.parametrize("janus_settings", [{"nat_1_1_mapping": "10.255.255.1"}], indirect=True)
async def test_a_private_nat_1_1_mapping_is_a_dtls_failure(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """ICE goes ready (Janus's own checks reach the client), DTLS never completes: hangup
    "DTLS timeout" after 20 s, one dtls failure blamed on Janus's private candidates."""
    await publish("nat11", wait_webrtcup=False)  # loopback_only strips 10.255.255.1
    await failure_counted(janus_lab, {("dtls", "server_private_candidates"): 1.0}, within=35.0)
    samples = await janus_lab.samples()
    private = sample(samples, "janus_ice_candidates_total", server=janus_lab.name, side="local",
                     type="host", scope="private")  # fmt: skip
    assert private is not None and private >= 1
    assert sample(samples, "janus_webrtc_hangups_total", server=janus_lab.name,
                  reason="DTLS timeout") == 1  # fmt: skip


async def test_a_clean_publisher_counts_a_setup_time_and_no_failure(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """A normal publisher: one setup time observed (role publisher), no failure."""
    await publish("clean")

    async def setup_seen() -> None:
        samples = await janus_lab.samples()
        count = sample(samples, "janus_webrtc_setup_seconds_count", server=janus_lab.name,
                       role="publisher")  # fmt: skip
        assert count == 1
        total = sample(samples, "janus_webrtc_setup_seconds_sum", server=janus_lab.name,
                       role="publisher")  # fmt: skip
        assert total is not None and 0 < total < 5
        print(f"publisher setup: {total:.3f} s")

    await janus_lab.eventually(setup_seen, "the publisher's setup time")
    assert failures(await janus_lab.samples(), janus_lab) == {}
