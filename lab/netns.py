"""Move this process into a private network namespace where Janus can do ICE on 127.0.0.1.

Janus never gathers ICE candidates on an interface flagged IFF_LOOPBACK, and with an enforce
list that matches nothing libnice falls back to every other address of the machine. The lab
therefore runs in a network namespace of its own, with ``lo`` up and a veth pair whose end
``labj0`` carries ``127.0.0.1/32`` (no IPv6): Janus, told ``ice_enforce_list = "labj0"``,
offers exactly one candidate, ``127.0.0.1``, and the namespace has no route anywhere else::

    status = enter_lab_netns()      # once, while the process is still single-threaded
    assert in_lab_netns()

A network namespace is a property of a thread. ``unshare(CLONE_NEWNET)`` moves only the
calling thread; threads it starts later inherit its namespace, threads that already exist stay
where they were. So the call refuses to run while the process has more than one thread.
Subprocesses (``ip``, ``sysctl``, ``janus``) inherit the namespace of the thread that forks
them. Needs root (CAP_SYS_ADMIN for unshare, CAP_NET_ADMIN for the links).

Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "LAB_ADDRESS",
    "LAB_INTERFACE",
    "LAB_PEER",
    "LabNetns",
    "LabNetnsError",
    "enter_lab_netns",
    "in_lab_netns",
    "interface_addresses",
]

LAB_INTERFACE: Final = "labj0"  # carries 127.0.0.1/32: Janus's ice_enforce_list
LAB_PEER: Final = "labj1"
LAB_ADDRESS: Final = "127.0.0.1"

CLONE_NEWNET: Final = 0x40000000
CAP_NET_ADMIN: Final = 12
CAP_SYS_ADMIN: Final = 21
_NEEDS_ROOT: Final = (
    "the lab network namespace needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): "
    "run the end-to-end tests as root"
)


class LabNetnsError(RuntimeError):
    """The lab network namespace could not be entered or set up; the message says why."""


@dataclass(frozen=True)
class LabNetns:
    """Where the process is: its network namespace and what ``ip -br addr`` shows there."""

    netns: str  # e.g. "net:[4026532301]", the readlink of /proc/thread-self/ns/net
    created: bool  # True if enter_lab_netns() made it; False if the process was already in one
    addresses: dict[str, tuple[str, ...]]  # interface -> its addresses (ip -br addr)
    interface: str = LAB_INTERFACE
    address: str = LAB_ADDRESS


_entered: LabNetns | None = None
_lock = threading.Lock()


# --------------------------------------------------------------------------- inspection


def _netns_id(pid: str = "thread-self") -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _tool(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        package = "procps" if name == "sysctl" else "iproute2"
        raise LabNetnsError(f"{name} is not installed (apt-get install {package})")
    return path


def _run(*cmd: str) -> str:
    """Run one command (it inherits this thread's network namespace); its stdout, or raise."""
    try:
        done = subprocess.run(
            [_tool(cmd[0]), *cmd[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabNetnsError(f"{' '.join(cmd)} failed: {exc}") from exc
    if done.returncode != 0:
        raise LabNetnsError(
            f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr.strip() or done.stdout}"
        )
    return done.stdout


def interface_addresses() -> dict[str, tuple[str, ...]]:
    """``ip -br addr`` of the current namespace: interface name -> addresses with prefix."""
    out: dict[str, tuple[str, ...]] = {}
    for line in _run("ip", "-br", "addr").splitlines():
        fields = line.split()
        if fields:
            out[fields[0].split("@", 1)[0]] = tuple(fields[2:])
    return out


def _looks_like_lab(addresses: dict[str, tuple[str, ...]]) -> bool:
    return addresses.get(LAB_INTERFACE) == (f"{LAB_ADDRESS}/32",) and any(
        a.startswith("127.0.0.1/") for a in addresses.get("lo", ())
    )


def in_lab_netns() -> bool:
    """Whether this thread is in a lab namespace: not the init namespace, lo up, labj0 set."""
    if _entered is not None and _netns_id() == _entered.netns:
        return True
    here, init = _netns_id(), _netns_id("1")
    if here is None or here == init:
        return False
    try:
        return _looks_like_lab(interface_addresses())
    except LabNetnsError:
        return False


def _capabilities() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def _thread_names() -> list[str]:
    """Names of every OS thread of this process (Python and native ones)."""
    names = []
    try:
        tasks = sorted(os.listdir("/proc/self/task"))
    except OSError:
        return [t.name for t in threading.enumerate()]
    for task in tasks:
        try:
            names.append(Path(f"/proc/self/task/{task}/comm").read_text().strip())
        except OSError:
            names.append(task)
    return names


# --------------------------------------------------------------------------- entering


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _unshare_net(libc: ctypes.CDLL) -> None:
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        detail = _NEEDS_ROOT if err == 1 else "the kernel or a sandbox refuses new namespaces"
        raise LabNetnsError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} ({detail})")


def _set_up_links() -> None:
    _run("ip", "link", "set", "lo", "up")
    _run("ip", "link", "add", LAB_INTERFACE, "type", "veth", "peer", "name", LAB_PEER)
    if Path(f"/proc/sys/net/ipv6/conf/{LAB_INTERFACE}").exists():  # absent if IPv6 is off
        _run(
            "sysctl",
            "-q",
            "-w",
            f"net.ipv6.conf.{LAB_INTERFACE}.disable_ipv6=1",
            f"net.ipv6.conf.{LAB_PEER}.disable_ipv6=1",
        )
    _run("ip", "addr", "add", f"{LAB_ADDRESS}/32", "dev", LAB_INTERFACE)
    _run("ip", "link", "set", LAB_PEER, "up")
    _run("ip", "link", "set", LAB_INTERFACE, "up")


def _verify() -> dict[str, tuple[str, ...]]:
    addresses = interface_addresses()
    problems = []
    if addresses.get(LAB_INTERFACE) != (f"{LAB_ADDRESS}/32",):
        problems.append(f"{LAB_INTERFACE} should carry only {LAB_ADDRESS}/32")
    if not any(a.startswith("127.0.0.1/") for a in addresses.get("lo", ())):
        problems.append("lo is not up with 127.0.0.1")
    others = sorted(set(addresses) - {"lo", LAB_INTERFACE, LAB_PEER})
    if others:
        problems.append(f"unexpected interfaces {others}")
    if addresses.get(LAB_PEER):
        problems.append(f"{LAB_PEER} should have no address")
    if problems:
        raise LabNetnsError(
            f"lab namespace is not as expected ({'; '.join(problems)}): {addresses}"
        )
    return addresses


def enter_lab_netns() -> LabNetns:
    """Move this process into a new network namespace set up for the lab; idempotent.

    Must be called while the process has a single thread. A second call, or a call from a
    process already in a lab namespace (one that is not the init namespace and has labj0
    with 127.0.0.1/32), changes nothing and returns the status. Raises LabNetnsError with the
    reason (not root, unshare refused, other threads running, a missing tool, a failed
    ``ip`` command); after a failure the process is back in the namespace it came from.
    """
    global _entered
    with _lock:
        if _entered is not None:
            return _entered
        here, init = _netns_id(), _netns_id("1")
        if here is not None and here != init:
            with contextlib.suppress(LabNetnsError):
                addresses = interface_addresses()
                if _looks_like_lab(addresses):
                    _entered = LabNetns(here, False, addresses)
                    return _entered
        threads = _thread_names()
        if threading.active_count() != 1 or len(threads) != 1:
            raise LabNetnsError(
                "enter_lab_netns() must run while the process is single-threaded "
                f"(unshare moves only the calling thread); threads now: {threads}"
            )
        caps = _capabilities()
        if not (caps >> CAP_SYS_ADMIN) & 1 or not (caps >> CAP_NET_ADMIN) & 1:
            raise LabNetnsError(_NEEDS_ROOT)
        for tool in ("ip", "sysctl"):
            _tool(tool)
        libc = _libc()
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _unshare_net(libc)
            try:
                _set_up_links()
                addresses = _verify()
            except BaseException as exc:
                if libc.setns(original, CLONE_NEWNET) != 0:  # back to where we came from
                    err = os.strerror(ctypes.get_errno())
                    raise LabNetnsError(
                        f"{exc}; then setns back to the original namespace failed: {err}"
                    ) from exc
                raise
        finally:
            os.close(original)
        netns = _netns_id()
        if netns is None:
            raise LabNetnsError("cannot read /proc/thread-self/ns/net")
        _entered = LabNetns(netns, True, addresses)
        return _entered
