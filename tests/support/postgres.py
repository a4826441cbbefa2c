"""A throwaway PostgreSQL cluster for the tests: `initdb` and `pg_ctl` on a free loopback
port, with a generated password. As root, the server runs as the `postgres` system user
(PostgreSQL refuses to run as root)."""

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.helpers import free_port
from tests.support.waiting import wait_for

USER = "telecare"


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off the PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; `make test` does it)")
    return Path(initdb).parent


def why_missing() -> str | None:
    """None when PostgreSQL is installed. When it is not and cannot be (not root, or no apt-get), the
    reason to skip; when it could be, a failure: `make test` installs it, so missing it is a set-up fault."""
    if glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"):
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        raise RuntimeError("PostgreSQL is not installed but could be: run `scripts/setup.sh --test` (make test does)")
    return "PostgreSQL is not installed and cannot be installed here (needs root and apt-get)"


@dataclass(frozen=True)
class Cluster:
    port: int
    password: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password,
                             dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name is ours, not input
        return self.url(name)


@contextmanager
def cluster() -> Iterator[Cluster]:
    programs = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="telecare-pg-"))
    data, password_file = root / "data", root / "password"
    password, port = secrets.token_urlsafe(24), free_port()
    password_file.write_text(password + "\n")
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for path in (root, password_file):
            os.chown(path, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o700)
    subprocess.run([*run_as, str(programs / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                    f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
    subprocess.run([*run_as, str(programs / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True)
    try:
        yield Cluster(port, password)
    finally:
        subprocess.run([*run_as, str(programs / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class ReplicatedCluster:
    """A primary and a streaming standby (synchronous: a commit returns once the standby has
    flushed it, so a promotion loses nothing the primary acknowledged)."""

    primary_port: int
    standby_port: int
    password: str
    root: Path
    run_as: list[str]

    def url(self, database: str) -> str:
        """Both servers in one libpq URL: a connection goes to whichever takes writes
        (`target_session_attrs=read-write`), so after a promotion new connections find it."""
        return (f"postgresql+psycopg://{USER}:{self.password}@/{database}?host=127.0.0.1:{self.primary_port}"
                f"&host=127.0.0.1:{self.standby_port}&target_session_attrs=read-write&connect_timeout=3")

    def create_database(self, name: str) -> str:
        with psycopg.connect(host="127.0.0.1", port=self.primary_port, user=USER, password=self.password,
                             dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name is ours, not input
        return self.url(name)

    def _pg_ctl(self, data: str, *arguments: str) -> None:
        subprocess.run([*self.run_as, str(bin_dir() / "pg_ctl"), "-D", str(self.root / data), *arguments],
                       check=True, capture_output=True)

    def standby_is_synchronous(self) -> bool:
        with psycopg.connect(host="127.0.0.1", port=self.primary_port, user=USER, password=self.password,
                             dbname="postgres", autocommit=True) as connection:
            states = connection.execute("SELECT sync_state FROM pg_stat_replication").fetchall()
        return ("sync",) in states

    def kill_primary(self) -> None:
        """The primary stops at once, as in a crash (`pg_ctl stop -m immediate`: no checkpoint)."""
        self._pg_ctl("primary", "-m", "immediate", "-w", "stop")

    def promote_standby(self) -> None:
        """The standby becomes the primary (`pg_ctl promote`), waiting until it takes writes."""
        self._pg_ctl("standby", "-w", "-t", "60", "promote")

    def stop(self) -> None:
        for data in ("standby", "primary"):
            subprocess.run([*self.run_as, str(bin_dir() / "pg_ctl"), "-D", str(self.root / data), "-m", "immediate",
                            "-w", "stop"], capture_output=True)


@contextmanager
def replicated_cluster() -> Iterator[ReplicatedCluster]:
    """A primary with one synchronous streaming standby (`pg_basebackup -R`), on free loopback
    ports; each server's log is `<root>/<name>.log`."""
    programs = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="telecare-pg-ha-"))
    password_file = root / "password"
    password, primary_port, standby_port = secrets.token_urlsafe(24), free_port(), free_port()
    password_file.write_text(password + "\n")
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for path in (root, password_file):
            os.chown(path, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o700)
    subprocess.run([*run_as, str(programs / "initdb"), "-D", str(root / "primary"), "-U", USER,
                    "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    common = f"-c listen_addresses=127.0.0.1 -k {root}"
    primary_options = (f"-p {primary_port} {common} -c wal_level=replica -c max_wal_senders=4 "
                       "-c synchronous_standby_names='*' -c synchronous_commit=on")
    subprocess.run([*run_as, str(programs / "pg_ctl"), "-D", str(root / "primary"), "-o", primary_options,
                    "-l", str(root / "primary.log"), "-w", "-t", "60", "start"], check=True, capture_output=True)
    cluster = ReplicatedCluster(primary_port, standby_port, password, root, run_as)
    try:
        subprocess.run([*run_as, "env", f"PGPASSWORD={password}", str(programs / "pg_basebackup"), "-h", "127.0.0.1",
                        "-p", str(primary_port), "-U", USER, "-D", str(root / "standby"), "-R", "-X", "stream",
                        "-c", "fast"], check=True, capture_output=True)
        # The standby's own name for synchronous replication, and its connection back to the primary
        # (`-R` wrote primary_conninfo with the password into postgresql.auto.conf).
        standby_options = f"-p {standby_port} {common} -c cluster_name=standby -c hot_standby=on"
        subprocess.run([*run_as, str(programs / "pg_ctl"), "-D", str(root / "standby"), "-o", standby_options,
                        "-l", str(root / "standby.log"), "-w", "-t", "60", "start"], check=True, capture_output=True)
        wait_for(lambda: cluster.standby_is_synchronous(), timeout=60, what="the standby to stream synchronously")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
