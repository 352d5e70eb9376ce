"""A throwaway PostgreSQL server on 127.0.0.1, for tests of code that uses a shared job store.

It runs the machine's own PostgreSQL binaries (`initdb`, `pg_ctl`: Debian's `postgresql`
package puts them in /usr/lib/postgresql/VERSION/bin) on a free port, in a temporary folder,
with trust authentication and no durability (it is thrown away), and removes everything when
stopped. As root it runs the server as the `postgres` user (PostgreSQL refuses root).

    from finetune_hub.testing.postgres_server import TemporaryPostgres

    with TemporaryPostgres() as server:
        url = server.create_database("my_test")     # postgresql+psycopg://postgres@127.0.0.1:PORT/my_test
        store = fh.JobStore(url=url)

With pytest, the session fixture `fh_postgres` (plugin `finetune_hub.testing.pytest_plugin`)
starts one per test session. Like the other fakes, this module imports nothing from finetune_hub.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

#: The one command that installs the server where it is missing (Debian, Ubuntu).
INSTALL_COMMAND = "apt-get install -y postgresql"


def find_postgres_bin() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: `$FINETUNE_HUB_PG_BIN`, the newest
    /usr/lib/postgresql/*/bin, or the folder of `pg_ctl` on PATH; None when there is none."""
    env = os.environ.get("FINETUNE_HUB_PG_BIN")
    candidates = [Path(env)] if env else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += [Path(p) for p in reversed(versions)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryPostgres:
    """A PostgreSQL server of its own in a temporary folder; `url(database)` reaches it."""

    def __init__(self, bin_dir: str | Path | None = None, port: int | None = None) -> None:
        found = Path(bin_dir) if bin_dir else find_postgres_bin()
        if found is None:
            raise FileNotFoundError(
                f"no PostgreSQL server binaries (initdb, pg_ctl) found; install them with: "
                f"{INSTALL_COMMAND}"
            )
        self.bin_dir = found
        self.port = port or _free_port()
        self.user = "postgres"
        self.folder: Path | None = None
        self._run_as: dict[str, Any] = {}

    @property
    def data(self) -> Path:
        assert self.folder is not None, "start() the server first"
        return self.folder / "data"

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            **self._run_as,
        )
        if result.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )

    def start(self) -> TemporaryPostgres:
        """initdb and start the server; returns self."""
        self.folder = Path(tempfile.mkdtemp(prefix="fh-postgres-"))
        if os.geteuid() == 0:  # the server refuses to run as root
            owner = pwd.getpwnam("postgres") if _has_user("postgres") else pwd.getpwnam("nobody")
            self._run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
            os.chmod(self.folder, 0o755)
            self.data.mkdir()
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
            (self.folder / "server.log").touch()
            os.chown(self.folder / "server.log", owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w",
            "-t", "60", "-o", settings, "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self.folder is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for `database` on this server."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL (needs psycopg)."""
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connection still open to it (needs psycopg)."""
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
