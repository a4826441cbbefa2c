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
