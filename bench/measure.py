"""What the benchmarks share: a free loopback port, and latency percentiles.

Each bench is run as a script (`.venv/bin/python bench/NAME.py`), so this module is imported
from the bench folder itself (`sys.path[0]`)."""

import argparse
import contextlib
import socket
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 (the median), p99 (nearest rank below) and max of `samples`, in their own unit, rounded to 0.01."""
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 2), "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2)}


def process_usage(pid: int) -> tuple[float, float]:
    """(user + system CPU seconds so far, peak resident set in MB) of a live process, from Linux's
    `/proc/<pid>/stat` (fields 14 and 15, in clock ticks) and `/proc/<pid>/status` (`VmHWM`, in kB).
    Raises OSError when the process is gone or the platform has no /proc."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14 and 15 of the whole line
    peak_kb = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
    return cpu, peak_kb / 1024


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster in a temporary folder of its own (removed on exit), on a free
    loopback port, fsync on (a commit is on disk, as SQLite's synchronous=FULL): yields the SQLAlchemy
    URL (psycopg 3) of an empty database, stops the server on exit. Runs the server as the `postgres`
    system user when run as root (PostgreSQL refuses root). Raises RuntimeError when PostgreSQL's
    `initdb` cannot be found (Debian keeps it under /usr/lib/postgresql/<version>/bin)."""
    import glob
    import os
    import pwd
    import secrets
    import shutil
    import subprocess
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found)")
    programs = Path(initdb).parent
    folder = Path(tempfile.mkdtemp(prefix="telecare-bench-pg-"))
    data, password_file = folder / "data", folder / "password"
    password, port = secrets.token_urlsafe(24), free_port()
    password_file.write_text(password + "\n")
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for path in (folder, password_file):
            os.chown(path, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(folder, 0o700)
    subprocess.run([*run_as, str(programs / "initdb"), "-D", str(data), "-U", "bench", "--auth=scram-sha-256",
                    f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder}"
    subprocess.run([*run_as, str(programs / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://bench:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(programs / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """`--database-url` and `--postgresql`, for a bench that runs the centre's parts in its own process
    (`centre_in_process`)."""
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temporary folder)")
    parser.add_argument("--postgresql", action="store_true", help="a throwaway PostgreSQL cluster of its own")


@contextlib.contextmanager
def centre_in_process(args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    """(a centre, its database's name): `centre_app.centre.Centre`, built and not started (no broker, no
    HTTP), on `args.database_url`, a throwaway PostgreSQL cluster (`args.postgresql`), or SQLite in a
    temporary folder; everything removed on exit."""
    import secrets
    import tempfile

    from centre_app.centre import Centre
    from centre_app.settings import CentreSettings

    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        url = args.database_url or f"sqlite:///{Path(folder) / 'centre.db'}"
        if args.postgresql:
            url = stack.enter_context(postgres_cluster())
        centre = Centre(CentreSettings(
            database_url=url, jwt_secret=secrets.token_urlsafe(48), mqtt_host="127.0.0.1", mqtt_port=free_port(),
            mqtt_password=secrets.token_urlsafe(24), http_port=free_port(), data_dir=Path(folder)))
        try:
            yield centre, url.split(":", 1)[0].split("+", 1)[0]
        finally:
            centre.engine.dispose()
