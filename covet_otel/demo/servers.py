"""Throw-away local PostgreSQL and Redis for the demo, when their binaries are installed."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import psutil


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


PREFIX = "covet-demo-"


def _workdir(kind: str) -> str:
    # the pid in the name lets the next demo remove what a killed one left behind
    return tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-")


def sweep_stale() -> None:
    """Remove the folders of demos that died without cleaning up (SIGKILL, power loss)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        parts = os.path.basename(path)[len(PREFIX) :].split("-")
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != os.getpid() and not psutil.pid_exists(pid):
            shutil.rmtree(path, ignore_errors=True)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the demo dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def find_postgres_bin() -> str | None:
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"):
        for directory in sorted(glob.glob(pattern), reverse=True):
            if os.path.exists(os.path.join(directory, "initdb")):
                return directory
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@dataclass
class LocalServer:
    name: str
    url: str
    process: subprocess.Popen
    workdir: str
    extra: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            # PostgreSQL's SIGTERM waits for clients to leave; SIGINT is its fast shutdown
            self.process.send_signal(signal.SIGINT if self.name == "postgres" else signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> LocalServer | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = _free_port()
    workdir = _workdir("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        start_new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops it in order
    )
    if not _wait_port(port, 10):
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        return None
    return LocalServer("redis", f"redis://127.0.0.1:{port}/0", proc, workdir)


def start_postgres() -> LocalServer | None:
    bindir = find_postgres_bin()
    if bindir is None:
        return None
    workdir = _workdir("pg")
    data = os.path.join(workdir, "data")
    preexec: Any = _die_with_parent
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: hand the directory to an unprivileged account
        import pwd

        account = next((n for n in ("postgres", "nobody") if _has_user(n)), None)
        if account is None:
            shutil.rmtree(workdir, ignore_errors=True)
            return None
        entry = pwd.getpwnam(account)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
        os.chmod(workdir, 0o700)

        def preexec() -> None:
            _die_with_parent()
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

    init = subprocess.run(
        [os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
        cwd=workdir,
    )
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        return None
    port = _free_port()
    proc = subprocess.Popen(
        [
            os.path.join(bindir, "postgres"),
            "-D",
            data,
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            workdir,
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=preexec,
        cwd=workdir,
        start_new_session=True,
    )
    if not _wait_port(port, 30):
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        return None
    return LocalServer("postgres", f"postgresql://postgres@127.0.0.1:{port}/postgres", proc, workdir)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
