"""A real PostgreSQL server for the storage tests, and storage URLs over SQLite and PostgreSQL.

The session fixture finds the server binaries (``pg_ctl`` on PATH or Debian's ``/usr/lib/postgresql/*/bin``),
installs Debian's ``postgresql`` with apt-get when they are missing (`.ci/run` does that before the tests; this is the
fallback), creates a throw-away cluster in a temporary directory (as the ``postgres`` system user when running as
root: the server refuses root), starts it on 127.0.0.1 on a free port and stops it at the end. When no server can be
had the fixture fails: PostgreSQL storage is tested, never skipped.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "cosmic"
_db_counter = itertools.count()


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(cands[-1]).parent if cands else None


def _install_postgresql() -> None:
    if os.geteuid() != 0:
        pytest.fail("PostgreSQL binaries not found and not root: install Debian's `postgresql` (see .ci/run)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"cannot install PostgreSQL: {' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bindir: Path, root: Path, port: int, as_postgres: bool) -> None:
        self.bindir, self.root, self.port, self.as_postgres = bindir, root, port, as_postgres
        self.data, self.sock, self.log = root / "data", root / "sock", root / "server.log"

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if check and r.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            pytest.fail(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}\n{log}")
        return r

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{db}"

    def create_database(self) -> str:
        name = f"cosmic_{os.getpid()}_{next(_db_counter)}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name)
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bindir()
    if bindir is None:
        _install_postgresql()
        bindir = _pg_bindir()
        if bindir is None:
            pytest.fail("apt-get installed postgresql but no pg_ctl under /usr/lib/postgresql/*/bin")
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="cosmic-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    srv = PgServer(bindir, root, _free_port(), as_postgres)
    srv.run("initdb", "-D", str(srv.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-locale")
    os.makedirs(srv.sock, exist_ok=True)
    if as_postgres:
        shutil.chown(srv.sock, "postgres", "postgres")
    opts = f"-h 127.0.0.1 -p {srv.port} -k {srv.sock} -c fsync=off -c max_connections=200"
    srv.run("pg_ctl", "-D", str(srv.data), "-l", str(srv.log), "-o", opts, "-w", "-t", "60", "start")
    try:
        yield srv
    finally:
        srv.run("pg_ctl", "-D", str(srv.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty PostgreSQL database."""
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh storage: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")
