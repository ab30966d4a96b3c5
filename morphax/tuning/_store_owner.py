"""Lease owner tokens that say when their process is provably gone.

A lease expires by wall time. A token made by :func:`owner_token` also names
its process exactly: the kernel's boot id, the PID namespace, the PID and the
process's start time. A process that sees the same boot and namespace can
tell for sure that the holder died (its PID is gone, or now belongs to a
process started later), and takes its lease over at once instead of waiting
for the expiry. Every other case (another host, another container, a copied
file, a renamed host, no /proc) is not provable, and waits for the expiry:
the shortcut can delay a takeover, never allow a second writer.
"""

from __future__ import annotations

import os
import re
import socket
import uuid

_TOKEN = re.compile(r"@(?P<boot>[0-9a-f]{32})\.(?P<ns>\d+)\.(?P<pid>\d+)\.(?P<start>\d+)$")


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "")
    except OSError:
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot); None if none runs."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    try:
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def owner_token(tag: str | None = None) -> str:
    """A lease owner token for one search of this process: `host:pid:tag`,
    plus the process's identity where the kernel gives it (Linux)."""
    pid = os.getpid()
    base = f"{socket.gethostname()}:{pid}:{tag or uuid.uuid4().hex[:12]}"
    boot, ns, start = _boot_id(), _pid_namespace(), _start_time(pid)
    if boot is None or ns is None or start is None:
        return base
    return f"{base}@{boot}.{ns}.{pid}.{start}"


def provably_dead(owner: str) -> bool:
    """Whether the process that made token `owner` has certainly exited."""
    m = _TOKEN.search(owner)
    if m is None or m["boot"] != _boot_id() or int(m["ns"]) != _pid_namespace():
        return False
    pid = int(m["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # no such process in this namespace
    except (PermissionError, OverflowError):
        pass  # another user's process runs under that PID
    start = _start_time(pid)
    return start is not None and start != int(m["start"])  # the PID was reused
