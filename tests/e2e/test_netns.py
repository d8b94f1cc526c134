"""lab.netns: the private network namespace the end-to-end suite runs in.

The session itself was moved there by tests/e2e/conftest.py; the refusals are checked in
child processes started in an empty namespace of their own (``unshare -n``), so that nothing
here touches the namespace the rest of the suite uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.netns import (
    LAB_ADDRESS,
    LAB_INTERFACE,
    LAB_PEER,
    LabNetns,
    enter_lab_netns,
    in_lab_netns,
    interface_addresses,
)
from tests.conftest import require_tool

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ENTER = """
import json, threading, time
from lab.netns import LabNetnsError, enter_lab_netns, in_lab_netns, _netns_id
if {with_thread}:
    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
before = _netns_id()
try:
    status = enter_lab_netns()
except LabNetnsError as exc:
    print(json.dumps({{"error": str(exc), "moved": _netns_id() != before, "lab": in_lab_netns()}}))
else:
    again = enter_lab_netns()
    print(json.dumps({{"created": status.created, "same": again is status, "lab": in_lab_netns(),
                      "moved": _netns_id() != before, "addresses": status.addresses}}))
"""


def run_in_fresh_netns(*prefix: str, with_thread: bool = False) -> dict[str, object]:
    """Run ENTER in a child process inside an empty network namespace; its JSON report."""
    unshare = require_tool("unshare")
    done = subprocess.run(
        [unshare, "-n", *prefix, sys.executable, "-c", ENTER.format(with_thread=with_thread)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_the_session_runs_in_the_lab_namespace_and_entering_again_does_nothing(
    lab_netns: LabNetns,
) -> None:
    """The suite runs outside the init namespace with lo, and labj0 carrying only 127.0.0.1/32,
    no route anywhere else, and a second enter_lab_netns() returns the same status."""
    assert in_lab_netns()
    assert lab_netns.netns == os.readlink("/proc/thread-self/ns/net")
    # The process that started pytest stayed in the namespace we came from.
    assert lab_netns.netns != os.readlink(f"/proc/{os.getppid()}/ns/net")
    assert enter_lab_netns() is lab_netns
    addresses = interface_addresses()
    assert set(addresses) == {"lo", LAB_INTERFACE, LAB_PEER}
    assert addresses[LAB_INTERFACE] == (f"{LAB_ADDRESS}/32",)  # no IPv6 link-local either
    assert addresses[LAB_PEER] == ()
    assert f"{LAB_ADDRESS}/8" in addresses["lo"]
    ip = require_tool("ip")
    for family in ("-4", "-6"):
        routes = subprocess.run(
            [ip, family, "route", "show", "default"], capture_output=True, text=True, check=True
        )
        assert routes.stdout.strip() == "", f"a default route ({family}): {routes.stdout}"


def test_a_process_in_an_empty_namespace_gets_a_lab_namespace(lab_netns: LabNetns) -> None:
    """A single-threaded process moves to a new namespace and sets lo and the veth up there."""
    report = run_in_fresh_netns()
    assert report["created"] is True
    assert report["moved"] is True
    assert report["same"] is True
    assert report["lab"] is True
    addresses = report["addresses"]
    assert isinstance(addresses, dict)
    assert set(addresses) == {"lo", LAB_INTERFACE, LAB_PEER}
    assert f"{LAB_ADDRESS}/8" in addresses["lo"]
    assert addresses[LAB_INTERFACE] == [f"{LAB_ADDRESS}/32"]
    assert addresses[LAB_PEER] == []


def test_entering_with_a_second_thread_is_refused(lab_netns: LabNetns) -> None:
    """With another thread running, enter_lab_netns() raises and leaves the process in place."""
    report = run_in_fresh_netns(with_thread=True)
    assert "single-threaded" in str(report["error"]), report
    assert report["moved"] is False
    assert report["lab"] is False


def test_entering_without_admin_capabilities_says_root_is_needed(lab_netns: LabNetns) -> None:
    """Without CAP_SYS_ADMIN and CAP_NET_ADMIN, enter_lab_netns() says root is needed."""
    setpriv = require_tool("setpriv")
    report = run_in_fresh_netns(setpriv, "--bounding-set=-sys_admin,-net_admin")
    assert "needs root" in str(report["error"]), report
    assert report["moved"] is False
