"""lab.janus: the generated Janus config, and a real Janus 1.1.2 started with it."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import lab.janus
from lab.janus import (
    KEEP_EVENT_HANDLERS,
    KEEP_PLUGINS,
    KEEP_TRANSPORTS,
    WSEVH_JCFG,
    WSEVH_SO,
    JanusLabConfig,
    JanusProcess,
    LabRoom,
    free_ports,
    get_json,
    janus_lib_dir,
    libconfig_string,
    post_json,
    require_janus,
    write_janus_config,
)


def lab_config(server_name: str, **overrides: Any) -> JanusLabConfig:
    http_port, admin_port, ws_port = free_ports(3)
    return JanusLabConfig(
        server_name=server_name,
        http_port=http_port,
        admin_port=admin_port,
        ws_port=ws_port,
        **overrides,
    )


def setting(text: str, group: str, key: str) -> str | None:
    """The raw value of key inside `group: { ... }` of a generated file (one setting a line)."""
    inside = False
    for line in text.splitlines():
        if line == f"{group}: {{":
            inside = True
        elif line == "}":
            inside = False
        elif inside and line.startswith(f"\t{key} = "):
            return line.split(" = ", 1)[1]
    return None


def so_names(kind: str) -> set[str]:
    folder = janus_lib_dir() / kind
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.name.endswith(".so")}


def disabled(text: str, group: str) -> set[str]:
    raw = setting(text, group, "disable")
    return set(json.loads(raw).split(",")) if raw else set()


@pytest.fixture
def janus_bin() -> str:
    return require_janus()


class Receiver:
    """A tiny sampleevh backend on 127.0.0.1 that keeps every event it is sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                parsed = json.loads(body)
                with receiver.lock:
                    receiver.events += parsed if isinstance(parsed, list) else [parsed]
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/janus-events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for event in self.events:
                    if predicate(event):
                        return event
            time.sleep(0.05)
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_libconfig_string_escapes_quotes_backslashes_and_controls() -> None:
    """Strings are written as libconfig literals with quotes, backslashes and controls escaped."""
    assert libconfig_string('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert libconfig_string("t\tn\nx\x01 é") == '"t\\tn\\nx\\x01 é"'
    with pytest.raises(ValueError, match="NUL"):
        libconfig_string("a\0b")


def test_config_writer_writes_the_minimal_file_set(tmp_path: Path) -> None:
    """write_janus_config writes the six lab .jcfg files and returns janus.jcfg's path."""
    cfg = lab_config("lab-files")
    jcfg = write_janus_config(tmp_path / "conf", cfg)
    assert jcfg == (tmp_path / "conf" / "janus.jcfg").absolute()
    assert sorted(p.name for p in (tmp_path / "conf").iterdir()) == [
        "janus.eventhandler.sampleevh.jcfg",
        "janus.jcfg",
        "janus.plugin.echotest.jcfg",
        "janus.plugin.videoroom.jcfg",
        "janus.transport.http.jcfg",
        "janus.transport.websockets.jcfg",
    ]
    text = jcfg.read_text()
    assert setting(text, "general", "configs_folder") == json.dumps(str(jcfg.parent))
    assert setting(text, "general", "interface") == '"127.0.0.1"'
    assert setting(text, "general", "server_name") == '"lab-files"'
    assert setting(text, "general", "debug_colors") == "false"
    assert setting(text, "events", "broadcast") == "true"
    assert setting(text, "nat", "ice_enforce_list") is None


def test_config_writer_disables_every_module_but_the_lab_ones(tmp_path: Path) -> None:
    """Every Janus .so is disabled but videoroom, echotest, http, websockets and sampleevh."""
    text = write_janus_config(tmp_path, lab_config("lab-disable")).read_text()
    assert disabled(text, "plugins") == so_names("plugins") - KEEP_PLUGINS
    assert disabled(text, "transports") == so_names("transports") - KEEP_TRANSPORTS
    assert disabled(text, "events") == so_names("events") - KEEP_EVENT_HANDLERS
    assert disabled(text, "loggers") == so_names("loggers")


def test_sampleevh_is_enabled_only_with_a_backend(tmp_path: Path) -> None:
    """sampleevh is disabled without evh_backend and carries backend and credentials with one."""
    write_janus_config(tmp_path / "a", lab_config("lab-evh-off"))
    off = (tmp_path / "a" / "janus.eventhandler.sampleevh.jcfg").read_text()
    assert setting(off, "general", "enabled") == "false"
    assert setting(off, "general", "backend") is None

    cfg = lab_config(
        "lab-evh-on",
        evh_backend="http://127.0.0.1:1/e",
        evh_user="u",
        evh_password='p"w',
        evh_compress=True,
        evh_json="plain",
    )
    write_janus_config(tmp_path / "b", cfg)
    on = (tmp_path / "b" / "janus.eventhandler.sampleevh.jcfg").read_text()
    assert setting(on, "general", "enabled") == "true"
    assert setting(on, "general", "backend") == '"http://127.0.0.1:1/e"'
    assert setting(on, "general", "backend_user") == '"u"'
    assert setting(on, "general", "backend_pwd") == '"p\\"w"'
    assert setting(on, "general", "compress") == "true"
    assert setting(on, "general", "json") == '"plain"'
    assert setting(on, "general", "max_retransmissions") == "5"


def test_config_rejects_inconsistent_settings() -> None:
    """JanusLabConfig refuses half credentials, clashing ports, unknown json formats, dup rooms."""
    with pytest.raises(ValueError, match="evh_user"):
        JanusLabConfig(server_name="x", evh_user="u")
    with pytest.raises(ValueError, match="differ"):
        JanusLabConfig(server_name="x", http_port=7088)
    with pytest.raises(ValueError, match="evh_json"):
        JanusLabConfig(server_name="x", evh_json="pretty")
    with pytest.raises(ValueError, match="room ids"):
        JanusLabConfig(server_name="x", rooms=(LabRoom(1), LabRoom(1)))


def test_require_janus_fails_on_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Janus, require_janus() fails the test when CI=true and skips it otherwise."""

    def missing() -> str:
        raise RuntimeError(lab.janus.NOT_INSTALLED)

    monkeypatch.setattr(lab.janus, "janus_binary", missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install janus"):
        require_janus()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install janus"):
        require_janus()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_janus()


@pytest.mark.e2e
def test_janus_starts_with_the_generated_config(janus_bin: str, tmp_path: Path) -> None:
    """A real Janus starts on the generated config and serves /janus/info and the Admin API."""
    name = 'lab "e2e" \\ jänus'
    cfg = lab_config(
        name,
        videoroom_admin_key="vr-key",
        rooms=(LabRoom(1234), LabRoom(77, description='d "q"', secret="s3")),
    )
    write_janus_config(tmp_path / "conf", cfg)
    with JanusProcess(cfg, binary=janus_bin).start(tmp_path / "conf", tmp_path / "janus.log") as j:
        assert j.running
        assert j.startup_seconds is not None
        assert j.startup_seconds < 15
        info = get_json(cfg.info_url)
        assert info["janus"] == "server_info"
        assert info["server-name"] == name
        assert set(info["plugins"]) == {"janus.plugin.videoroom", "janus.plugin.echotest"}
        assert set(info["transports"]) == {"janus.transport.http", "janus.transport.websockets"}

        admin = post_json(
            cfg.admin_url, {"janus": "info", "transaction": "t1", "admin_secret": cfg.admin_secret}
        )
        assert admin["janus"] == "server_info"
        assert admin["transaction"] == "t1"
        assert admin["server-name"] == name
        denied = post_json(
            cfg.admin_url, {"janus": "list_sessions", "transaction": "t2", "admin_secret": "wrong"}
        )
        assert denied["janus"] == "error"
        assert denied["error"]["code"] == 403

        rooms = post_json(
            cfg.admin_url,
            {
                "janus": "message_plugin",
                "transaction": "t3",
                "admin_secret": cfg.admin_secret,
                "plugin": "janus.plugin.videoroom",
                "request": {"request": "list"},
            },
        )["response"]["list"]
        by_id = {room["room"]: room for room in rooms}
        assert set(by_id) == {1234, 77}
        assert by_id[1234]["bitrate"] == 256000
        assert by_id[1234]["max_publishers"] == 6
        assert by_id[77]["description"] == 'd "q"'
    assert j.returncode == 0  # stopped cleanly by SIGTERM when the with block ended


@pytest.mark.e2e
def test_sampleevh_delivers_the_core_started_event(
    janus_bin: str, tmp_path: Path, receiver: Receiver
) -> None:
    """With evh_backend set, Janus POSTs the core started event (type 256) with our emitter."""
    cfg = lab_config("lab-evh", evh_backend=receiver.url)
    write_janus_config(tmp_path / "conf", cfg)
    with JanusProcess(cfg, binary=janus_bin).start(tmp_path / "conf", tmp_path / "janus.log"):
        started = receiver.wait_for(
            lambda e: e.get("type") == 256 and e.get("event", {}).get("status") == "started",
            timeout=10.0,
        )
    assert started is not None, f"no started event; got {receiver.events}"
    assert started["emitter"] == "lab-evh"
    assert started["event"]["info"]["server-name"] == "lab-evh"


@pytest.mark.e2e
def test_start_failure_raises_with_the_log_tail(janus_bin: str, tmp_path: Path) -> None:
    """When Janus exits during startup, start() raises RuntimeError quoting the Janus log."""
    cfg = lab_config("lab-broken")
    jcfg = write_janus_config(tmp_path / "conf", cfg)
    jcfg.write_text('general: { server_name = "unterminated\n')
    janus = JanusProcess(cfg, binary=janus_bin)
    with pytest.raises(RuntimeError, match=r"exited with code \d+(.|\n)*janus\.jcfg"):
        janus.start(tmp_path / "conf", tmp_path / "janus.log", timeout=10)
    assert not janus.running


def test_wsevh_config_is_written_and_loaded_only_with_a_ws_backend(tmp_path: Path) -> None:
    """evh_ws_backend writes an enabled wsevh config (events, grouping, json, backend; Janus's
    default subprotocol) and loads libjanus_wsevh.so; without it the file and the .so go."""
    cfg = JanusLabConfig(
        server_name="lab-wsevh",
        evh_ws_backend="ws://127.0.0.1:9/events",
        evh_events="plugins,core",
        evh_grouping=False,
        evh_json="plain",
    )
    conf = tmp_path / "conf"
    text = lab.janus.write_janus_config(conf, cfg).read_text()
    assert disabled(text, "events") == so_names("events") - KEEP_EVENT_HANDLERS - {WSEVH_SO}
    ws = (conf / WSEVH_JCFG).read_text()
    assert setting(ws, "general", "enabled") == "true"
    assert setting(ws, "general", "backend") == '"ws://127.0.0.1:9/events"'
    assert setting(ws, "general", "events") == '"plugins,core"'
    assert setting(ws, "general", "grouping") == "false"
    assert setting(ws, "general", "json") == '"plain"'
    assert setting(ws, "general", "subprotocol") is None  # wsevh's default: janus-event-handlers
    assert setting((conf / "janus.eventhandler.sampleevh.jcfg").read_text(), "general", "enabled")

    custom = replace(cfg, evh_ws_subprotocol="x-evh")
    lab.janus.write_janus_config(conf, custom)
    assert setting((conf / WSEVH_JCFG).read_text(), "general", "subprotocol") == '"x-evh"'

    plain = replace(cfg, evh_ws_backend=None, evh_ws_subprotocol=None)
    text = lab.janus.write_janus_config(conf, plain).read_text()
    assert disabled(text, "events") == so_names("events") - KEEP_EVENT_HANDLERS
    assert not (conf / WSEVH_JCFG).exists()  # the earlier generated one is removed

    (conf / WSEVH_JCFG).write_text("general: {}\n")  # not ours: left alone
    lab.janus.write_janus_config(conf, plain)
    assert (conf / WSEVH_JCFG).read_text() == "general: {}\n"

    with pytest.raises(ValueError, match="evh_ws_backend"):
        JanusLabConfig(server_name="x", evh_ws_backend="http://127.0.0.1:9/events")
    with pytest.raises(ValueError, match="evh_ws_subprotocol"):
        JanusLabConfig(server_name="x", evh_ws_subprotocol="x-evh")
