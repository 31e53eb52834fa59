"""Starting and stopping the cluster's processes so that none is ever left behind.

Each component runs in its own session (process group), so that a Ctrl-C in the
terminal reaches only the launcher, which then stops the components in order. Attached
components also get PR_SET_PDEATHSIG: if the launcher dies without cleaning up (SIGKILL,
crash), the kernel kills them. Detached components outlive the launcher on purpose and
are found again through their pid and start time in the state file, which guards
against killing a recycled pid.

PR_SET_PDEATHSIG fires when the *thread* that started the child exits, so start attached
components from a thread that lives as long as the cluster should (the main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessRecord:
    """Enough to find and stop a process from another shell."""

    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ProcessRecord:
        return cls(**raw)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports; all sockets stay open until every port is picked."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # zombie or dead: as good as gone
        return None
    return int(fields[19])


def spawn(
    name: str, argv: list[str], log: Path, *, detach: bool, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    log.parent.mkdir(parents=True, exist_ok=True)
    preexec: Callable[[], None] | None = None if detach else _die_with_parent
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
            env=env,
        )
    ticks = start_ticks(proc.pid) or 0
    return proc, ProcessRecord(name, proc.pid, ticks, argv, str(log))


def is_alive(rec: ProcessRecord) -> bool:
    # A record made after the process had already died has start_ticks 0: never alive.
    return start_ticks(rec.pid) == rec.start_ticks != 0


def stop(
    rec: ProcessRecord, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0
) -> None:
    """SIGTERM to the process group, SIGKILL after `timeout` seconds."""
    if not is_alive(rec):
        _reap(proc)
        return
    _signal_group(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(proc)
        if not is_alive(rec):
            return
        time.sleep(0.05)
    _signal_group(rec.pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # start_new_session made pid the group leader; kill the whole group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.poll()
