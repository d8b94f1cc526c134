"""The Node ``mytutorcode/janus-prometheus-exporter`` (the only other exporter that ingests
Janus events), obtained and run for ``bench.ingest --node-exporter``.

``python -m bench.node_exporter [DIR]`` prepares it alone: a git checkout of ``COMMIT`` in DIR
(default ``$JANUS_MONITOR_NODE_EXPORTER``, else ``${XDG_CACHE_HOME:-~/.cache}/janus-monitor-
bench/janus-prometheus-exporter``), cloned from ``$JANUS_MONITOR_NODE_EXPORTER_SOURCE``, else
the local mirror ``/work/.mirror/mytutorcode+janus-prometheus-exporter/repo`` when present,
else GitHub; then ``npm install`` of its dependencies from the npm registry. Nothing of it is
copied into this repository: the bench only runs it, unmodified, with ``node``.

How it runs (read from its src/server.js and Dockerfile): an express app with
``bodyParser.json()`` takes sampleevh arrays on ``POST /event``, walks every event before
answering ``200 OK`` (text), or ``500`` with the error text when an event throws; ``GET
/monitor/`` answers ``up``. It listens on ``config.port`` (8085, hard-coded in src/config.js)
on every interface, so the launcher sets that port to a free one and binds it to 127.0.0.1
before loading the server. ``NODE_ENV=production`` as its Docker image sets.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.ingest_bodies import BenchError
from bench.ingest_servers import Server, free_port

REPO = "mytutorcode/janus-prometheus-exporter"
COMMIT = "7568218e4677c95d7000d9638670da2eb55d2c10"  # its newest commit, 0.0.2
MIRROR = Path("/work/.mirror/mytutorcode+janus-prometheus-exporter/repo")
UPSTREAM = f"https://github.com/{REPO}.git"
EVENT_PATH = "/event"
HEALTH_PATH = "/monitor/"
LABEL = "Node janus-prom-exporter"
# Written into node_modules once `npm install` succeeded for COMMIT: a later run skips it.
STAMP = ".janus-monitor-bench-installed"

# The launcher: the port is taken from the environment and the one listen() the server makes
# is pinned to loopback (the bench only makes 127.0.0.1 traffic), then src/server.js is loaded
# as `node src/server.js` would.
LAUNCHER = """
const net = require("net");
const port = Number(process.env.BENCH_PORT);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callbacks = args.filter((arg) => typeof arg === "function");
  return listen.call(this, port, "127.0.0.1", ...callbacks);
};
require("./src/config.js").port = port;
require("./src/server.js");
"""


def default_dir() -> Path:
    chosen = os.environ.get("JANUS_MONITOR_NODE_EXPORTER")
    if chosen:
        return Path(chosen)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "janus-monitor-bench" / "janus-prometheus-exporter"


def default_source() -> str:
    chosen = os.environ.get("JANUS_MONITOR_NODE_EXPORTER_SOURCE")
    if chosen:
        return chosen
    return str(MIRROR) if MIRROR.exists() else UPSTREAM


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def prepare(where: Path, source: str | None = None) -> Path:
    """A checkout of COMMIT in ``where`` with its node_modules installed; ``where``."""
    where = where.resolve()
    try:
        if not (where / ".git").exists():
            where.parent.mkdir(parents=True, exist_ok=True)
            _git("clone", "-q", source or default_source(), str(where))
        if _git("-C", str(where), "rev-parse", "HEAD") != COMMIT:
            _git("-C", str(where), "checkout", "-q", "--detach", COMMIT)
        # Tracked files as committed (a half-made checkout, or edits, would measure other code).
        _git("-C", str(where), "reset", "-q", "--hard", COMMIT)
        stamp = where / "node_modules" / STAMP
        if not stamp.exists() or stamp.read_text().strip() != COMMIT:
            # --no-save: its lockfile (v1, written for 0.0.1) is used but never rewritten, so
            # the checkout stays the commit as published.
            subprocess.run(
                ["npm", "install", "--no-save", "--omit=dev", "--no-audit", "--no-fund"],
                cwd=where, check=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            stamp.write_text(COMMIT + "\n")
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        raise BenchError(f"cannot prepare {REPO} in {where}: {exc} {detail}".strip()) from exc
    return where


def versions(where: Path) -> str:
    """``node vX, express Y, prom-client Z``, as installed."""
    found = [f"node {_run_text(['node', '--version'])}"]
    for package in ("express", "body-parser", "prom-client"):
        manifest = where / "node_modules" / package / "package.json"
        try:
            text = manifest.read_text()
        except OSError:
            continue
        version = text.split('"version"', 1)[1].split('"')[1] if '"version"' in text else "?"
        found.append(f"{package} {version}")
    return ", ".join(found)


def _run_text(command: list[str]) -> str:
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def node_server(where: Path, tmp: Path, taken: set[int]) -> Server:
    port = free_port()
    while port in taken:
        port = free_port()
    env = dict(os.environ)
    # NAMESPACE / ENVIRONMENT / NAME become the labels of its default metrics.
    env.update(
        BENCH_PORT=str(port), NODE_ENV="production", NAMESPACE="bench", ENVIRONMENT="bench",
        NAME="bench",
    )  # fmt: skip
    return Server(
        LABEL,
        ["node", "-e", LAUNCHER],
        port,
        tmp / "node.out",
        tmp / "node.err",
        check_accepted=False,
        cwd=where,
        path=EVENT_PATH,
        health_path=HEALTH_PATH,
        env=env,
        count_errors=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_exporter", description=__doc__)
    parser.add_argument("dir", nargs="?", type=Path, default=None, help="checkout directory")
    parser.add_argument("--source", help="git URL or path to clone from")
    args = parser.parse_args(argv)
    try:
        where = prepare(args.dir or default_dir(), args.source)
    except BenchError as exc:
        print(f"bench.node_exporter: {exc}", file=sys.stderr)
        return 1
    print(f"{where} ({COMMIT[:7]}; {versions(where)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
