"""Security sweep: every kind of configured secret (targets[].admin_secret, api_secret,
room_secrets, webhook.basic_auth.password, the amqp URL's password), with distinctive values,
is searched for in everything the daemon says: its logs at debug level (structlog's JSON lines
and stdlib logging), every API answer and error body, reload answers, /metrics, the landing
page, check-config and doctor output. None may show up, in plain or in the forms a request
carries it (base64 Basic credentials).

One daemon runs in-process against the fake Admin API (failing, then answering); one runs as
``python -m monitor run`` with an amqp broker that is not there, so that whatever aio-pika and
aiohttp print on their own is searched too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from lab.janus import free_port
from monitor.config import load_config
from tests.conftest import (
    Daemon,
    body_paths,
    capture_daemon_logs,
    log_lines,
    run_daemon,
)
from tests.fakes import FakeAdminServer, serve_fake_admin

ROOT = Path(__file__).resolve().parent.parent
SERVER = "janus-lab-1"  # the fixtures' emitter
USER = "evh-user"
SECRETS = {
    "admin_secret": "S3cr3t-admin-91ac5e",
    "api_secret": "S3cr3t-api-27bd04",
    "room_secret": "S3cr3t-room-6f13d8",
    "basic_auth": "S3cr3t-evh-c80a7e",
    "amqp": "S3cr3t-amqp-4e59b2",
}
NEW_ADMIN_SECRET = "S3cr3t-admin-reloaded-0d3f"  # the secret a reload brings in


def forbidden() -> dict[str, str]:
    """Each secret, and the Basic credentials a webhook request carries."""
    found = dict(SECRETS, new_admin_secret=NEW_ADMIN_SECRET)
    found["basic_header"] = base64.b64encode(f"{USER}:{SECRETS['basic_auth']}".encode()).decode()
    return found


def assert_no_secret(texts: dict[str, str]) -> None:
    leaks = [(where, kind) for where, text in texts.items()
             for kind, secret in forbidden().items() if secret in text]  # fmt: skip
    assert not leaks, f"secrets shown (where, which): {leaks}"


def config_dict(admin_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "log": {"level": "debug", "format": "json"},
        "webhook": {"basic_auth": {"username": USER, "password": SECRETS["basic_auth"]}},
        "targets": [{
            "name": SERVER, "admin_url": admin_url, "admin_secret": SECRETS["admin_secret"],
            "janus_url": f"http://127.0.0.1:{free_port()}/janus",
            "api_secret": SECRETS["api_secret"], "poll_interval": "200ms",
            "room_secrets": {"1234": SECRETS["room_secret"]},
        }],
        "remediation": {"mode": "enforce", "audit_log": str(tmp_path / "actions.jsonl")},
        **extra,
    }  # fmt: skip


def write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def echoing_failure(body: dict[str, Any]) -> dict[str, Any]:
    """A broken Janus that quotes the request, secret and all, in its error reason."""
    return {"janus": "error", "transaction": body["transaction"],
            "error": {"code": 490, "reason": f"cannot handle {json.dumps(body)}"}}  # fmt: skip


async def collect(daemon: Daemon, texts: dict[str, str]) -> None:
    """Every endpoint's answer (and a few error bodies) into ``texts``."""
    good = {"Authorization": basic(USER, SECRETS["basic_auth"])}
    for path in ("/", "/metrics", "/-/healthy", "/-/ready", "/api/v1/servers", "/api/v1/rooms",
                 "/api/v1/publishers", "/api/v1/actions", f"/api/v1/publishers/{SERVER}/1/2",
                 f"/api/v1/handles/{SERVER}/1/2", "/no/such/page", "/events"):  # fmt: skip
        async with daemon.http.get(daemon.url(path), headers=good) as response:
            texts[f"GET {path} {response.status}"] = await response.text()
    wrong = [basic(USER, SECRETS["basic_auth"] + "x"), basic(USER, SECRETS["admin_secret"]),
             "Basic " + SECRETS["basic_auth"], "Bearer " + SECRETS["basic_auth"]]  # fmt: skip
    for header in wrong:
        status, answer, _ = await daemon.post_events(b"[]", {"Authorization": header})
        assert status == 401
        texts[f"POST /events 401 {header[:6]}"] = json.dumps(answer)
    for body, headers in (
        (body_paths("10-media")[0].read_bytes(), good),
        (b"{not json", good),
        (b"[1]", {**good, "Content-Encoding": "br"}),
    ):
        status, answer, _ = await daemon.post_events(body, headers)
        texts[f"POST /events {status}"] = json.dumps(answer)


async def test_no_secret_in_logs_api_errors_reloads_or_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Polls that fail (a Janus quoting the secret back) and succeed, webhook posts good and
    bad, every endpoint, a good and a failing reload: no secret in any log line or answer."""
    raw = capture_daemon_logs(monkeypatch, "debug")
    caplog.set_level(logging.DEBUG)
    texts: dict[str, str] = {}
    async with serve_fake_admin(SECRETS["admin_secret"]) as fake:
        fake.reply = echoing_failure
        path = write(tmp_path / "janus-monitor.yml", config_dict(fake.url, tmp_path))
        async for daemon in run_daemon(load_config(path), path):
            await until_logged(raw, "target_down")
            fake.reply = fake.janus_reply
            await until_logged(raw, "target_up")
            await collect(daemon, texts)

            reloaded = config_dict(fake.url, tmp_path)
            reloaded["targets"][0]["admin_secret"] = NEW_ADMIN_SECRET
            fake.secret = NEW_ADMIN_SECRET
            write(path, reloaded)
            async with daemon.http.post(daemon.url("/-/reload")) as response:
                assert response.status == 200
                texts["reload ok"] = await response.text()
            polled = len(fake.received)
            await until_logged(
                raw, "poll", len([x for x in log_lines(raw) if x["event"] == "poll"]) + 2
            )
            assert any(b.get("admin_secret") == NEW_ADMIN_SECRET for b in fake.received[polled:])
            await refused_reloads(daemon, path, fake, tmp_path, texts)
            await collect(daemon, texts)
    texts["log"] = raw.getvalue().decode()
    texts["stdlib log"] = caplog.text
    events = {line["event"] for line in log_lines(raw)}
    # The sweep saw what it is meant to: failures quoting the secret, polls, batches, reloads.
    assert {"target_down", "target_up", "poll", "webhook_batch", "config_reloaded",
            "config_reload_failed"} <= events  # fmt: skip
    assert any(SECRETS["admin_secret"] in json.dumps(b) for b in fake.received)
    assert_no_secret(texts)


async def refused_reloads(
    daemon: Daemon, path: Path, fake: FakeAdminServer, tmp_path: Path, texts: dict[str, str]
) -> None:
    """Reloads of configs that are wrong right where a secret is: 500 naming the key."""
    bad: dict[str, dict[str, Any]] = {}
    config = config_dict(fake.url, tmp_path)
    config["amqp"] = {"url": f"http://janus:{SECRETS['amqp']}@127.0.0.1:5672/"}
    bad["amqp.url"] = config
    config = config_dict(fake.url, tmp_path)
    config["targets"][0]["room_secrets"] = {"1234": [SECRETS["room_secret"]]}
    bad["room_secrets"] = config
    config = config_dict(fake.url, tmp_path)
    config["webhook"]["basic_auth"]["passwd"] = SECRETS["basic_auth"]
    bad["basic_auth"] = config
    config = config_dict(fake.url, tmp_path)
    config["targets"][0]["admin_url"] = f"http://janus:{SECRETS['admin_secret']}@127.0.0.1:7088/"
    bad["admin_url"] = config
    for key, config in bad.items():
        write(path, config)
        async with daemon.http.post(daemon.url("/-/reload")) as response:
            assert response.status == 500, key
            texts[f"reload {key}"] = text = await response.text()
        assert key.split(".")[0] in text, text


async def until_logged(raw: Any, event: str, count: int = 1, within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while sum(line["event"] == event for line in log_lines(raw)) < count:
        assert loop.time() < deadline, f"{event} not logged {count} time(s) within {within}s"
        await asyncio.sleep(0.02)


# --- the whole process: amqp, stdlib logging, check-config, doctor ---------------------------


async def command(*args: str, cwd: Path) -> tuple[int, str]:
    """``python -m monitor ARGS``: exit code and everything printed (stdout and stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def test_no_secret_from_a_running_daemon_with_a_missing_broker(tmp_path: Path) -> None:
    """``run`` with an amqp URL whose broker is not there, scraped and reloaded by SIGHUP, then
    stopped: nothing it printed (aio-pika's own lines included) holds a secret."""
    port = free_port()
    config = config_dict(f"http://127.0.0.1:{free_port()}/admin", tmp_path)
    config["listen"] = f"127.0.0.1:{port}"
    broker = f"127.0.0.1:{free_port()}"
    config["amqp"] = {"url": f"amqp://janus-monitor:{SECRETS['amqp']}@{broker}/%2F"}
    path = write(tmp_path / "janus-monitor.yml", config)
    printed = tmp_path / "daemon.out"
    with printed.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "--config", str(path), cwd=ROOT,
            stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    texts: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            await answering(http, base + "/-/healthy")
            process.send_signal(signal.SIGHUP)
            for where in ("/", "/metrics", "/-/ready", "/api/v1/servers", "/api/v1/actions"):
                async with http.get(base + where) as response:
                    texts[where] = await response.text()
            assert "amqp" in texts["/-/ready"]  # not ready: the broker gate is still closed
            async with http.post(base + "/-/reload") as response:
                texts["reload"] = await response.text()
            # Failed connection attempts (aio-pika's own lines, which name the URL) and both
            # reloads, then stop.
            await printed_enough(printed, {"Connection attempt to": 2, '"config_reloaded"': 2})
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    texts["output"] = output = printed.read_text(errors="replace")
    assert "amqp://janus-monitor:******@" in output  # aio-pika masks it in its own lines
    code, texts["check-config"] = await command("check-config", str(path), cwd=ROOT)
    assert code == 0 and "janus-monitor:***@" in texts["check-config"]
    assert_no_secret(texts)


async def printed_enough(path: Path, counts: dict[str, int], within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        text = await asyncio.to_thread(path.read_text, errors="replace")
        if all(text.count(what) >= n for what, n in counts.items()):
            return
        assert loop.time() < deadline, f"not printed within {within}s: {counts}\n{text[-3000:]}"
        await asyncio.sleep(0.1)


async def answering(http: aiohttp.ClientSession, url: str, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert loop.time() < deadline, f"{url} did not answer within {within}s"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("admin_secret", ["right", "wrong", "echoed"])
async def test_no_secret_in_doctor_output(tmp_path: Path, admin_secret: str) -> None:
    """``doctor`` against an Admin API that accepts the secret, refuses it (403), or quotes it
    back in an error: its findings hold no secret."""
    async with serve_fake_admin(SECRETS["admin_secret"]) as fake:
        if admin_secret == "wrong":
            fake.secret = "another-secret"
        elif admin_secret == "echoed":
            fake.reply = echoing_failure
        path = write(tmp_path / "janus-monitor.yml", config_dict(fake.url, tmp_path))
        code, output = await command("doctor", "--config", str(path), cwd=ROOT)
    assert any(SECRETS["admin_secret"] in json.dumps(b) for b in fake.received)
    if admin_secret == "wrong":
        assert code == 1 and "admin_secret refused (403)" in output, output
    assert "Traceback" not in output and SERVER in output
    assert_no_secret({"doctor": output})


def test_the_echoing_fake_is_really_quoting_the_secret() -> None:
    """The failure reply used above does carry the secret, so the sweeps would see a leak."""
    body = {"janus": "info", "transaction": "t", "admin_secret": SECRETS["admin_secret"]}
    assert SECRETS["admin_secret"] in json.dumps(echoing_failure(body))
