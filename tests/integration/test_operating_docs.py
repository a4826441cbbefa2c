"""`docs/operating.md` tried as written, on this Debian host: the system Mosquitto, started as
root with the shipped `deploy/centre/mosquitto.conf` in its `conf.d` beside a Debian-style main
configuration, drops to user `mosquitto`, reads the files `telecare admin broker-files` wrote,
and lets a hub in over TLS and the centre in on its loopback listener.

Only the paths (a temporary root instead of `/etc`) and the ports (free loopback ports) are
changed from the shipped configuration; every directory gets the mode and group the docs give
it. The admin commands run as root here (there is no `telecare` user on a test machine), which
gives the files to user `mosquitto`; run as the centre's user, the set-group-id directory gives
them group `mosquitto` instead (`tests/unit/centre_app/test_admin_books.py`).
"""

import grp
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from hub_agent.uplink import Uplink
from monitoring_centre.broker import find_mosquitto
from monitoring_centre.storage import Alert, Device
from telecare_protocol import DeviceEvent, DeviceType, EventCode
from tests.support.helpers import free_port
from tests.support.waiting import wait_for

SHIPPED = Path(__file__).parents[2] / "deploy" / "centre" / "mosquitto.conf"
BROKER_USER = "mosquitto"


def _why_not_here() -> str | None:
    if os.geteuid() != 0:
        return "needs root: Mosquitto must start as root and drop to its own user, as under systemd"
    if find_mosquitto() is None:
        return "mosquitto is not installed (apt-get install mosquitto)"
    if shutil.which("openssl") is None:
        return "openssl is needed for the broker's TLS certificate"
    try:
        pwd.getpwnam(BROKER_USER)
    except KeyError:
        return "no mosquitto user: Debian's mosquitto package creates it"
    return None


pytestmark = pytest.mark.skipif(_why_not_here() is not None, reason=_why_not_here() or "")


def install_dir(path: Path, mode: int, group: str | None = None, owner: str | None = None) -> Path:
    """`install -d -m MODE [-o OWNER] [-g GROUP] PATH`."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, pwd.getpwnam(owner).pw_uid if owner else -1, grp.getgrnam(group).gr_gid if group else -1)
    path.chmod(mode)
    return path


def shipped_config(root: Path, hub_port: int, centre_port: int) -> str:
    """The shipped conf.d snippet with `/etc/telecare` under `root` and the two listeners on free
    loopback ports. Fails if the snippet no longer has the lines the docs describe."""
    text = SHIPPED.read_text()
    replacements = [
        (r"/etc/telecare/", f"{root}/etc/telecare/"),
        (r"(?m)^listener 8883$", f"listener {hub_port} 127.0.0.1"),
        (r"(?m)^listener 1883 127\.0\.0\.1$", f"listener {centre_port} 127.0.0.1"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count >= 1, f"the shipped mosquitto.conf has no {pattern!r}"
    return text


def debian_main_config(root: Path) -> str:
    """What Debian's /etc/mosquitto/mosquitto.conf sets, with its paths under `root`."""
    return (f"pid_file {root}/run/mosquitto/mosquitto.pid\n\npersistence true\n"
            f"persistence_location {root}/var/lib/mosquitto/\n\nlog_dest stderr\n\n"
            f"include_dir {root}/etc/mosquitto/conf.d\n")


def telecare(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "telecare.cli", *args], env=env, text=True, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def root() -> Iterator[Path]:
    """A stand-in for `/`: world-searchable like `/`, which a pytest tmp_path (mode 700) is not."""
    path = Path(tempfile.mkdtemp(prefix="telecare-operating-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _effective_user(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return pwd.getpwuid(int(line.split()[2])).pw_name
    raise AssertionError(f"no Uid line for process {pid}")


def test_the_documented_broker_set_up_lets_a_hub_and_the_centre_in(root: Path) -> None:
    # Install, as docs/operating.md says (with the Debian package's own directories).
    install_dir(root / "run" / "mosquitto", 0o755, owner=BROKER_USER, group=BROKER_USER)
    install_dir(root / "var" / "lib" / "mosquitto", 0o755, owner=BROKER_USER, group=BROKER_USER)
    conf_d = install_dir(root / "etc" / "mosquitto" / "conf.d", 0o755)
    install_dir(root / "etc" / "telecare", 0o755)
    broker_dir = install_dir(root / "etc" / "telecare" / "broker", 0o2750, group=BROKER_USER)
    tls = install_dir(root / "etc" / "telecare" / "tls", 0o750, group=BROKER_USER)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(tls / "broker.key"),
                    "-out", str(tls / "broker.crt")], check=True, capture_output=True, timeout=60)
    for name in ("broker.crt", "broker.key"):
        os.chown(tls / name, -1, grp.getgrnam(BROKER_USER).gr_gid)
        (tls / name).chmod(0o640)
    hub_port, centre_port = free_port(), free_port()
    (conf_d / "telecare.conf").write_text(shipped_config(root, hub_port, centre_port))
    main_config = root / "etc" / "mosquitto" / "mosquitto.conf"
    main_config.write_text(debian_main_config(root))

    # Keeping the books: enrol a home, write the broker's files (as root, the default owner).
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
    env |= {"TELECARE_DATABASE_URL": f"sqlite:///{root / 'centre.db'}",
            "TELECARE_JWT_SECRET": secrets.token_urlsafe(48), "TELECARE_MQTT_PASSWORD": secrets.token_urlsafe(24)}
    hub = telecare(env, "admin", "enrol", "--name", "Ada Lovelace", "--hub-id", "hub-0042",
                   "--device", "pendant-1:pendant", "--device", "pir-1:motion:kitchen")
    telecare(env, "admin", "broker-files", "--out", str(broker_dir))
    for name in ("passwd", "acl"):
        info = (broker_dir / name).stat()
        assert (info.st_mode & 0o777, pwd.getpwuid(info.st_uid).pw_name) == (0o640, BROKER_USER), name

    mosquitto = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(main_config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    uplink: Uplink | None = None
    try:
        def listening() -> bool:
            if mosquitto.poll() is not None:
                output = mosquitto.stdout.read() if mosquitto.stdout else ""
                raise AssertionError(f"mosquitto exited with status {mosquitto.returncode}:\n{output}")
            return _accepts(hub_port) and _accepts(centre_port)

        wait_for(listening, timeout=15, what="mosquitto to listen on both listeners")
        assert _effective_user(mosquitto.pid) == BROKER_USER  # it dropped root, and still read its files

        settings = CentreSettings(database_url=env["TELECARE_DATABASE_URL"], jwt_secret=env["TELECARE_JWT_SECRET"],
                                  mqtt_password=env["TELECARE_MQTT_PASSWORD"], mqtt_port=centre_port,
                                  http_port=free_port())
        with CentreThread(Centre(settings)) as centre:  # raises unless the centre's sessions connect
            uplink = Uplink(hub_id="hub-0042", password=hub["hub_password"], host="127.0.0.1", port=hub_port,
                            tls_ca=tls / "broker.crt")
            uplink.start()
            uplink.send(DeviceEvent.new(hub_id="hub-0042", device_id="pendant-1",
                                        device_type=DeviceType.PERSONAL_TRIGGER, code=EventCode.MANUAL_ALARM,
                                        source_ts=datetime.now(UTC)))
            assert uplink.connected.wait(15), "the hub could not connect over TLS"

            def alarm_stored() -> bool:
                with centre.sessions() as session:
                    return session.scalar(select(Alert.id).where(Alert.rule == "pendant_alarm")) is not None

            wait_for(alarm_stored, timeout=20, what="the hub's alarm to reach the centre through the broker")
            with centre.sessions() as session:  # enrolled with its place in the home
                motion = session.get(Device, ("hub-0042", "pir-1"))
                assert motion is not None and motion.location == "kitchen"
            health = httpx.get(f"{centre.url}/health")
            assert health.status_code == 200, health.text
            assert health.json()["checks"]["broker"]["connected"] is True
    finally:
        if uplink is not None:
            uplink.stop()
        mosquitto.terminate()
        mosquitto.wait(10)


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
