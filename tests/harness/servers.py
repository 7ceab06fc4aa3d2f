"""Real servers for tests: PostgreSQL, Redis, Prometheus 3, Alertmanager.

Each server runs as a child process (through mirakuru) on a free loopback port, in its own temporary
directory, with its output in ``<workdir>/server.log``. Every server object has:

- ``start()`` (also restarts on the same port, keeping the data directory), ``stop()``, ``kill()``;
- ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT to the server's whole process group) and the context
  managers ``paused_ctx()`` / ``stopped()`` (and the ``paused`` property);
- ``host``, ``port``, ``url``, ``pid``, ``running``, ``log_tail()``;
- ``cleanup()`` (stop and remove the temporary directory). Servers still alive at interpreter exit
  are cleaned up by an ``atexit`` hook, and, when started from the main thread, each child gets
  PR_SET_PDEATHSIG so it dies with the test process even when that one is killed.

Binaries are located by :mod:`harness.tools` (skip, or an error under CI=true, when missing).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
from mirakuru import Executor
from mirakuru.exceptions import ExecutorError, ProcessFinishedWithError

from . import tools

LOOPBACK = "127.0.0.1"

# ---------------------------------------------------------------------------------------------------
# ports
# ---------------------------------------------------------------------------------------------------
_ports_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` now and was not handed out before in this process."""
    with _ports_lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("could not find a free port")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------
# process plumbing
# ---------------------------------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1
try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _child_setup_with_pdeathsig() -> None:  # runs in the forked child, after any uid/gid change
    os.setsid()
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _ServerExecutor(Executor):
    """mirakuru executor whose readiness is a callable, started in its own session."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        host: str,
        port: int,
        ready: Callable[[], bool],
        pdeathsig: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(list(command), **kwargs)
        self.host = host
        self.port = port
        self._ready = ready
        self._pdeathsig = pdeathsig

    def pre_start_check(self) -> bool:
        return port_open(self.host, self.port)

    def after_start_check(self) -> bool:
        try:
            return bool(self._ready())
        except Exception:
            return False

    @property
    def _popen_kwargs(self) -> dict[str, Any]:
        kwargs = super()._popen_kwargs
        kwargs["universal_newlines"] = False
        if self._pdeathsig:
            kwargs["preexec_fn"] = _child_setup_with_pdeathsig
        return kwargs


_live_servers: set[Server] = set()
_live_lock = threading.Lock()


@atexit.register
def _cleanup_all_servers() -> None:
    with _live_lock:
        servers = list(_live_servers)
    for server in servers:
        with contextlib.suppress(Exception):
            server.cleanup()


_WORKDIR_PREFIX = "covet-"
_OWNER_FILE = ".harness-owner"
_swept = False


def _sweep_stale_workdirs() -> None:
    """Remove temporary directories of harness servers whose test process is gone (killed before its
    cleanup ran). Only directories carrying the harness's owner file are touched."""
    global _swept
    if _swept:
        return
    _swept = True
    for path in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        owner = path / _OWNER_FILE
        try:
            pid = int(owner.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not psutil.pid_exists(pid):
            shutil.rmtree(path, ignore_errors=True)


class ServerStartError(RuntimeError):
    pass


class Server:
    """Base class: one server process on ``host:port`` with its files in ``workdir``."""

    name = "server"
    stop_signal: int = signal.SIGTERM

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = LOOPBACK,
        workdir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._own_workdir = workdir is None
        if workdir is None:
            _sweep_stale_workdirs()
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{self.name}-"))
            (self.workdir / _OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.env = dict(env or {})
        self.log_path = self.workdir / "server.log"
        self._executor: _ServerExecutor | None = None
        self._log_file: Any = None
        self._paused = False
        self._prepared = False
        self._cleaned = False
        with _live_lock:
            _live_servers.add(self)

    # -- to override ------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """One-time setup before the first start (initdb, ...)."""

    def _before_start(self) -> None:
        """Runs before every start (e.g. write the configuration from the current attributes)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def _popen_user(self) -> dict[str, Any]:
        return {}

    # -- public API -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._executor is not None and self._executor.running()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pid(self) -> int | None:
        if self._executor is None or self._executor.process is None:
            return None
        return self._executor.process.pid

    def start(self) -> Server:
        """Start the server (again, on the same port and data directory) and wait until it is ready."""
        if self._cleaned:
            raise RuntimeError(f"{self.name} on port {self.port} was cleaned up; create a new one")
        if self.running:
            if self._paused:
                self.resume()
            return self
        if not self._prepared:
            self._prepare()
            self._prepared = True
        self._before_start()
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n==== {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
        self._log_file.flush()
        executor = _ServerExecutor(
            self.command(),
            host=self.host,
            port=self.port,
            ready=self.ready,
            pdeathsig=threading.current_thread() is threading.main_thread(),
            cwd=str(self.workdir),
            timeout=self.startup_timeout,
            sleep=0.1,
            stop_signal=self.stop_signal,
            envvars=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            popen_kwargs=self._popen_user(),
        )
        self._executor = executor
        self._paused = False
        try:
            executor.start()
        except ExecutorError as exc:
            with contextlib.suppress(Exception):
                executor.kill()
            self._executor = None
            self._close_log()
            raise ServerStartError(
                f"{self.name} did not start on {self.address}: {exc}\n--- {self.log_path} ---\n"
                f"{self.log_tail()}"
            ) from exc
        return self

    def stop(self) -> None:
        """Stop the server gracefully (killed after the startup timeout); no-op when not running."""
        executor = self._executor
        if executor is None:
            return
        if self._paused:
            self.resume()
        try:
            executor.stop()
        except ProcessFinishedWithError:
            pass  # it exited with an unexpected code while stopping: it is stopped all the same
        finally:
            if executor.process is not None:
                with contextlib.suppress(Exception):
                    executor.kill()
            self._executor = None
            self._close_log()

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash, not a shutdown)."""
        executor = self._executor
        if executor is None:
            return
        if self._paused:
            self.resume()
        with contextlib.suppress(Exception):
            executor.kill(sig=signal.SIGKILL)
        self._executor = None
        self._close_log()

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def _tree(self, pid: int) -> list[psutil.Process]:
        # PostgreSQL backends call setsid(): signalling the process group would leave open
        # connections answering, so every descendant is signalled by pid
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    def pause(self) -> None:
        """Freeze the server and every process it forked (SIGSTOP): connections hang instead of failing."""
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"{self.name} is not running")
        os.killpg(pid, signal.SIGSTOP)
        for process in self._tree(pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.suspend()
        self._paused = True

    def resume(self) -> None:
        pid = self.pid
        if pid is None:
            self._paused = False
            return
        os.killpg(pid, signal.SIGCONT)
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in self._tree(pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.resume()
        self._paused = False

    @contextlib.contextmanager
    def paused_ctx(self) -> Iterator[Server]:
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[Server]:
        self.stop()
        try:
            yield self
        finally:
            self.start()

    def log_tail(self, max_bytes: int = 8000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-max_bytes:].decode("utf-8", "replace")

    def cleanup(self) -> None:
        """Stop the server and remove its temporary directory."""
        if self._cleaned:
            return
        try:
            self.stop()
        finally:
            self._cleaned = True
            with _live_lock:
                _live_servers.discard(self)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(Exception):
                self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "paused" if self._paused else ("running" if self.running else "stopped")
        return f"<{type(self).__name__} {self.address} {state} {self.workdir}>"


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        return client.get(url).status_code == 200


# ---------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------
_pg_template_lock = threading.Lock()
_pg_templates: dict[tuple[str, str, int | None], Path] = {}


class PostgreSQL(Server):
    """PostgreSQL (Debian package) with trust authentication on 127.0.0.1.

    Run as the ``postgres`` OS user when the tests run as root (PostgreSQL refuses to run as root).
    """

    name = "postgresql"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients to disconnect

    def __init__(
        self,
        *,
        user: str = "postgres",
        database: str = "postgres",
        settings: Mapping[str, str | int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.bin_dir = tools.postgres_bin_dir()
        super().__init__(**kwargs)
        self.user = user
        self.database = database
        self.datadir = self.workdir / "data"
        self.settings: dict[str, str | int] = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 200,
            "shared_buffers": "32MB",
        }
        self.settings.update(settings or {})
        self._os_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._os_user = pwd.getpwnam("postgres")
            except KeyError:
                tools.missing("the 'postgres' OS user (created by the postgresql package)")

    def _popen_user(self) -> dict[str, Any]:
        if self._os_user is None:
            return {}
        return {"user": self._os_user.pw_uid, "group": self._os_user.pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        if self._os_user is not None:
            os.chown(self.workdir, self._os_user.pw_uid, self._os_user.pw_gid)
        if (self.datadir / "PG_VERSION").exists():
            return
        # initdb once per process and user, then copy that cluster (cp -a keeps owner and modes):
        # much faster than an initdb for every fresh_postgres
        template = self._template_cluster()
        proc = subprocess.run(
            ["cp", "-a", str(template), str(self.datadir)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ServerStartError(f"copying the template cluster failed: {proc.stderr}")

    def _template_cluster(self) -> Path:
        key = (str(self.bin_dir), self.user, self._os_user.pw_uid if self._os_user else None)
        with _pg_template_lock:
            cached = _pg_templates.get(key)
            if cached is not None and (cached / "PG_VERSION").exists():
                return cached
            base = Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}postgresql-template-"))
            (base / _OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
            if self._os_user is not None:
                os.chown(base, self._os_user.pw_uid, self._os_user.pw_gid)
            datadir = base / "data"
            cmd = [
                str(self.bin_dir / "initdb"),
                "-D", str(datadir),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]  # fmt: skip
            proc = subprocess.run(
                cmd,
                cwd=base,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                **self._popen_user(),
            )
            if proc.returncode != 0:
                shutil.rmtree(base, ignore_errors=True)
                raise ServerStartError(f"initdb failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
            _pg_templates[key] = datadir
            atexit.register(shutil.rmtree, base, True)
            return datadir

    def command(self) -> list[str]:
        cmd = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.datadir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", f"unix_socket_directories={self.workdir}",
        ]  # fmt: skip
        for key, value in self.settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def ready(self) -> bool:
        proc = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
             "-U", self.user, "-d", "postgres", "-t", "1"],
            capture_output=True,
            timeout=10,
            check=False,
        )  # fmt: skip
        return proc.returncode == 0

    @property
    def url(self) -> str:
        return self.dsn

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run SQL with psql (unaligned, tuples only, stop on error) and return its output."""
        proc = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database or self.database,
             "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout.strip()

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` and return its DSN."""
        ident = '"' + name.replace('"', '""') + '"'
        sql = f"CREATE DATABASE {ident}"
        if template:
            sql += ' TEMPLATE "' + template.replace('"', '""') + '"'
        self.psql(sql, database="postgres")
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        ident = '"' + name.replace('"', '""') + '"'
        self.psql(f"DROP DATABASE IF EXISTS {ident} WITH (FORCE)", database="postgres")


class PostgresExporter(Server):
    """postgres_exporter (Debian package) for one harness PostgreSQL, as the collector expects it:
    connecting as a ``pg_monitor`` role (not a superuser) with the shipped
    ``collector/postgres_exporter/queries.yaml``. It keeps serving while PostgreSQL is down (``pg_up 0``),
    which is what the PostgreSQLDown alert relies on."""

    name = "postgres_exporter"
    QUERIES = tools.REPO_ROOT / "collector" / "postgres_exporter" / "queries.yaml"

    def __init__(self, postgres: PostgreSQL, *, role: str = "covet_monitor", **kwargs: Any) -> None:
        self.binary = tools.postgres_exporter()
        super().__init__(**kwargs)
        self.postgres = postgres
        self.role = role
        # the password is checked only where pg_hba asks for one (the harness trusts loopback); it is
        # here to show the exporter's DSN shape, and it must never reach a metric
        self.password = "covet-monitor-secret"
        self.env.setdefault(
            "DATA_SOURCE_NAME",
            f"postgresql://{role}:{self.password}@{postgres.host}:{postgres.port}/postgres?sslmode=disable",
        )

    def _prepare(self) -> None:
        ident = '"' + self.role.replace('"', '""') + '"'
        role = "'" + self.role.replace("'", "''") + "'"
        password = "'" + self.password.replace("'", "''") + "'"
        self.postgres.psql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role}) THEN "
            f"CREATE ROLE {ident} LOGIN PASSWORD {password}; END IF; END $$",
            database="postgres",
        )
        self.postgres.psql(f"GRANT pg_monitor TO {ident}", database="postgres")

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--web.listen-address={self.host}:{self.port}",
            f"--extend.query-path={self.QUERIES}",
            "--log.level=warn",
        ]

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/metrics")

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"


# ---------------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------------
class Redis(Server):
    """redis-server (Debian package) without persistence (no RDB snapshots, no AOF)."""

    name = "redis"

    def __init__(self, *, extra_args: Sequence[str] = (), **kwargs: Any) -> None:
        self.binary = tools.redis_server()
        super().__init__(**kwargs)
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--logfile", "",
            *self.extra_args,
        ]  # fmt: skip

    def ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: Any) -> Any:
        """A synchronous redis-py client (caller closes it)."""
        import redis

        return redis.Redis(host=self.host, port=self.port, **kwargs)


# ---------------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------------
class PromQLError(RuntimeError):
    pass


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


class PromQLServer(Server):
    """A server that answers the Prometheus HTTP query API (Prometheus, VictoriaMetrics)."""

    def api_get(self, path: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.get(f"{self.url}{path}", params=params)
        try:
            body = response.json()
        except ValueError as exc:
            raise PromQLError(f"GET {path}: HTTP {response.status_code}: {response.text[:500]}") from exc
        if body.get("status") != "success":
            raise PromQLError(
                f"GET {path} {dict(params or {})}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result list (vector samples, or ``[scalar]`` for scalars)."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        data = self.api_get("/api/v1/query", params)
        if data["resultType"] in ("vector", "matrix"):
            return data["result"]
        return [data["result"]]

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
        interval: float = 0.5,
    ) -> list[dict[str, Any]]:
        """Poll ``query(promql)`` until ``predicate(result)`` is true (default: non-empty result).

        Returns the satisfying result; raises ``TimeoutError`` with the last result otherwise."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = self.query(promql)
                if predicate(last):
                    return last
            except (PromQLError, httpx.HTTPError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{promql!r} did not satisfy the predicate within {timeout}s; last: {last!r}"
                )
            time.sleep(interval)


class Prometheus(PromQLServer):
    """Prometheus 3 with the OTLP receiver (``/api/v1/otlp/v1/metrics``) and lifecycle API enabled.

    ``scrape_targets``: ``["host:port", ...]`` (job ``targets``) or ``{"job": ["host:port", ...]}``;
    ``scrape_configs``: raw scrape_config dicts appended as they are; ``scrape_self`` adds job
    ``prometheus`` scraping this server. ``rule_files`` are loaded and evaluated every
    ``evaluation_interval``; ``alertmanagers`` (``host:port``) receive the alerts. ``extra_config`` is
    deep-merged into the generated configuration (e.g. ``{"otlp": {...}}``).
    """

    name = "prometheus"

    def __init__(
        self,
        *,
        scrape_targets: Sequence[str] | Mapping[str, Sequence[str]] = (),
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        scrape_self: bool = True,
        rule_files: Sequence[str | os.PathLike[str]] = (),
        alertmanagers: Sequence[str] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        extra_config: Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.binary = tools.prometheus()
        super().__init__(**kwargs)
        if isinstance(scrape_targets, Mapping):
            self.scrape_targets = {job: list(t) for job, t in scrape_targets.items()}
        else:
            self.scrape_targets = {"targets": list(scrape_targets)} if scrape_targets else {}
        self.scrape_configs = [dict(c) for c in scrape_configs]
        self.scrape_self = scrape_self
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.alertmanagers = list(alertmanagers)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.extra_config = dict(extra_config or {})
        self.extra_args = list(extra_args)
        self.config_path = self.workdir / "prometheus.yml"
        self.data_dir = self.workdir / "data"

    def config(self) -> dict[str, Any]:
        scrape: list[dict[str, Any]] = []
        if self.scrape_self:
            scrape.append({"job_name": "prometheus", "static_configs": [{"targets": [self.address]}]})
        for job, targets in self.scrape_targets.items():
            scrape.append({"job_name": job, "static_configs": [{"targets": targets}]})
        scrape.extend(self.scrape_configs)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": scrape,
            # OTLP pushes from several processes may arrive slightly out of order
            "storage": {"tsdb": {"out_of_order_time_window": "30m"}},
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        return _deep_merge(config, self.extra_config)

    def write_config(self) -> Path:
        # JSON is YAML: no YAML dependency needed to write the configuration
        self.config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        return self.config_path

    def _before_start(self) -> None:
        self.write_config()

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            "--web.enable-otlp-receiver",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
            *self.extra_args,
        ]

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")

    @property
    def otlp_endpoint(self) -> str:
        """Base for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter appends ``/v1/metrics``)."""
        return f"{self.url}/api/v1/otlp"

    @property
    def otlp_metrics_url(self) -> str:
        """Full URL for ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` / ``OTLPMetricExporter(endpoint=...)``."""
        return f"{self.url}/api/v1/otlp/v1/metrics"

    def targets(self) -> list[dict[str, Any]]:
        return self.api_get("/api/v1/targets")["activeTargets"]

    def rules(self) -> list[dict[str, Any]]:
        return self.api_get("/api/v1/rules")["groups"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.api_get("/api/v1/alerts")["alerts"]

    def reload(self) -> None:
        """Rewrite the configuration from the current attributes and reload it (``POST /-/reload``)."""
        self.write_config()
        with httpx.Client(timeout=30, trust_env=False) as client:
            response = client.post(f"{self.url}/-/reload")
        if response.status_code != 200:
            raise RuntimeError(f"reload failed: HTTP {response.status_code}: {response.text}")


class VictoriaMetrics(PromQLServer):
    """VictoriaMetrics single-node (built by scripts/install-tools.sh): a Prometheus-compatible store
    that takes remote write at ``/api/v1/write`` and answers PromQL (MetricsQL) at ``/api/v1/query``.

    ``-search.latencyOffset=0s``: by default it hides the newest 30 s of samples from queries, which
    would only slow the tests down."""

    name = "victoria-metrics"

    def __init__(self, *, extra_args: Sequence[str] = (), **kwargs: Any) -> None:
        self.binary = tools.victoria_metrics()
        super().__init__(**kwargs)
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"-httpListenAddr={self.address}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
            *self.extra_args,
        ]

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/health")

    @property
    def remote_write_url(self) -> str:
        return f"{self.url}/api/v1/write"


# ---------------------------------------------------------------------------------------------------
# Alertmanager
# ---------------------------------------------------------------------------------------------------
DEFAULT_ALERTMANAGER_CONFIG: dict[str, Any] = {
    "route": {"receiver": "null", "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
    "receivers": [{"name": "null"}],
}


class Alertmanager(Server):
    """Alertmanager with clustering disabled, given a config file (or a config dict / YAML text)."""

    name = "alertmanager"

    def __init__(
        self,
        config_file: str | os.PathLike[str] | None = None,
        *,
        config: Mapping[str, Any] | str | None = None,
        extra_args: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        if config_file is not None and config is not None:
            raise ValueError("give config_file or config, not both")
        self.binary = tools.alertmanager()
        super().__init__(**kwargs)
        self.extra_args = list(extra_args)
        self.data_dir = self.workdir / "data"
        if config_file is not None:
            self.config_path = Path(config_file).resolve()
            self._config: Mapping[str, Any] | str | None = None
        else:
            self.config_path = self.workdir / "alertmanager.yml"
            self._config = config if config is not None else DEFAULT_ALERTMANAGER_CONFIG

    def _prepare(self) -> None:
        if self._config is not None:
            text = self._config if isinstance(self._config, str) else json.dumps(self._config, indent=2)
            self.config_path.write_text(text, encoding="utf-8")

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
            *self.extra_args,
        ]

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (params such as ``filter=["alertname=X"]``, ``active=True``)."""
        with httpx.Client(timeout=10, trust_env=False) as client:
            response = client.get(f"{self.url}/api/v2/alerts", params=params)
        response.raise_for_status()
        return response.json()

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (each alert: ``{"labels": {...}, "annotations": {...}}``)."""
        with httpx.Client(timeout=10, trust_env=False) as client:
            response = client.post(f"{self.url}/api/v2/alerts", json=list(alerts))
        response.raise_for_status()

    def wait_for_alert(self, alertname: str, timeout: float = 30.0, interval: float = 0.5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for alert in self.alerts():
                if alert.get("labels", {}).get("alertname") == alertname:
                    return alert
            if time.monotonic() >= deadline:
                raise TimeoutError(f"alert {alertname!r} did not reach Alertmanager within {timeout}s")
            time.sleep(interval)
