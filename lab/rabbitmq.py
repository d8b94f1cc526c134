"""A private RabbitMQ node (Debian ``rabbitmq-server`` 3.10) on 127.0.0.1, run as whoever
calls it, in a folder of its own: for ``make run-fleet`` and the broker e2e tests.

Debian's ``/usr/sbin/rabbitmq-server`` switches to the ``rabbitmq`` user and the system
folders; the script under ``/usr/lib/rabbitmq/bin`` reads everything from ``RABBITMQ_*``
variables instead. The node, its Erlang distribution port and epmd all bind 127.0.0.1, the
consistent-hash exchange plugin is enabled, and the users come from a definitions file
(so there is no ``guest``). ``stop()`` then ``start()`` again is a broker restart: the
durable queues survive in the folder, non-durable exchanges and bindings do not.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from lab.janus import file_tail, free_port, free_ports, stop_process_group
from lab.tls import ServerCert

SERVER: str = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL: str = "/usr/lib/rabbitmq/bin/rabbitmqctl"
NOT_INSTALLED = "RabbitMQ is not installed: apt-get install rabbitmq-server"
PLUGINS = ("rabbitmq_consistent_hash_exchange",)


def require_rabbitmq() -> str:
    if not Path(SERVER).exists():
        raise FileNotFoundError(NOT_INSTALLED)
    return SERVER


@dataclass(frozen=True)
class BrokerUser:
    name: str
    password: str
    tags: str = ""


@dataclass
class RabbitBroker:
    """One node; ``users`` get full rights on vhost ``/``."""

    work: Path
    users: tuple[BrokerUser, ...] = (
        BrokerUser("janus-monitor", "monitor-secret"),
        BrokerUser("janus", "janus-secret"),
    )
    port: int = 0
    dist_port: int = 0
    epmd_port: int = 0
    tls: ServerCert | None = None  # when set, an amqps listener on tls_port too
    tls_port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.work = self.work.absolute()
        if not (self.port and self.dist_port and self.epmd_port):
            self.port, self.dist_port, self.epmd_port = free_ports(3)
        if self.tls is not None and not self.tls_port:
            self.tls_port = free_port()
        # A long name on an address: no name lookup (a fresh machine may have no /etc/hosts,
        # and the lab namespace no DNS).
        self.node = f"jm{self.port}@127.0.0.1"

    def url(self, user: str | None = None, tls: bool = False) -> str:
        chosen = next((u for u in self.users if u.name == user), self.users[0])
        scheme, port = ("amqps", self.tls_port) if tls else ("amqp", self.port)
        return (
            f"{scheme}://{quote(chosen.name, safe='')}:{quote(chosen.password, safe='')}"
            f"@127.0.0.1:{port}/%2F"
        )

    @property
    def log(self) -> Path:
        return self.work / "rabbitmq.out"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(self.work),  # the Erlang cookie is written here
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_USE_LONGNAME="true",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_CTL_DIST_PORT_MIN=str(self.dist_port + 1),
            RABBITMQ_CTL_DIST_PORT_MAX=str(self.dist_port + 10),
            RABBITMQ_MNESIA_BASE=str(self.work / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.work / "log"),
            RABBITMQ_CONFIG_FILE=str(self.work / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.work / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(self.work / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.work / "enabled_plugins"),
            RABBITMQ_PLUGINS_EXPAND_DIR=str(self.work / "plugins-expand"),
            RABBITMQ_PID_FILE=str(self.work / "rabbitmq.pid"),
        )
        return env

    def _write_config(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        definitions = {
            "users": [{"name": u.name, "password": u.password, "tags": u.tags} for u in self.users],
            "vhosts": [{"name": "/"}],
            "permissions": [
                {"user": u.name, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
                for u in self.users
            ],
        }
        (self.work / "definitions.json").write_text(json.dumps(definitions))
        (self.work / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            f"load_definitions = {self.work / 'definitions.json'}\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = true\nlog.console.level = warning\nlog.file = false\n"
            + self._tls_config()
        )
        (self.work / "advanced.config").write_text("[].\n")
        (self.work / "rabbitmq-env.conf").write_text("")
        (self.work / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")

    def _tls_config(self) -> str:
        if self.tls is None:
            return ""
        return (
            f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
            f"ssl_options.cacertfile = {self.tls.ca_file}\n"
            f"ssl_options.certfile = {self.tls.cert_file}\n"
            f"ssl_options.keyfile = {self.tls.key_file}\n"
            "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"
        )

    def start(self, timeout: float = 60.0) -> RabbitBroker:
        require_rabbitmq()
        if self.starts == 0:
            self._write_config()
        self.starts += 1
        self.proc = subprocess.Popen(
            [SERVER],
            env=self._environment(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.work,
        )
        try:
            self._wait_listening(timeout)
        except BaseException:
            self.close()  # the node, and the epmd it started
            raise
        return self

    def _wait_listening(self, timeout: float) -> None:
        """Ready once the AMQP port accepts and the node says it runs its apps."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited:\n{file_tail(self.log)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.2)
                continue
            if self.ctl("await_startup", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"rabbitmq-server not ready after {timeout:g}s:\n{file_tail(self.log)}")

    def ctl(
        self, *args: str, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CTL, "-n", self.node, *args],
            env=self._environment(),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def list_consumers(self) -> list[dict[str, object]]:
        """The broker's own view: which consumer is active on which queue."""
        out = self.ctl(
            "list_consumers", "queue_name", "channel_pid", "consumer_tag", "active",
            "--formatter", "json",
        ).stdout  # fmt: skip
        result: list[dict[str, object]] = json.loads(out or "[]")
        return result

    def queue_depths(self) -> dict[str, int]:
        out = self.ctl("list_queues", "name", "messages", "--formatter", "json").stdout
        return {row["name"]: int(row["messages"]) for row in json.loads(out or "[]")}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.ctl("stop", check=False, timeout=60)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_process_group(self.proc)
        self.proc = None

    def close(self) -> None:
        """Stop, and end epmd, which the node started and which outlives it."""
        self.stop()
        epmd = shutil.which("epmd")
        if epmd:  # ERL_EPMD_PORT in the environment says which epmd
            subprocess.run([epmd, "-kill"], env=self._environment(), check=False,
                           capture_output=True, timeout=10)  # fmt: skip

    def __enter__(self) -> RabbitBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
