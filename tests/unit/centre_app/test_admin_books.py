"""`telecare admin`: every device kind a hub supports can be enrolled, with where it is; the
broker's files are written for the user the broker runs as, or refused with the reason."""

import os
import pwd
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import admin, schema
from monitoring_centre.storage import Device, make_engine
from telecare_protocol.codes import DeviceKind


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    with sessionmaker(engine)() as session:
        yield session
    engine.dispose()


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_every_kind_a_hub_supports_can_be_enrolled(kind: DeviceKind) -> None:
    assert admin.parse_device(f"dev-1:{kind.value}").kind == kind.value


def test_a_device_can_be_given_its_place_in_the_home(session: Session) -> None:
    devices = [admin.parse_device("pir-1:motion:kitchen"), admin.parse_device("front-door:door:front_door"),
               admin.parse_device("pendant-1:pendant")]
    admin.enrol(session, name="Ada", address="", hub_id="hub-1", devices=devices, centre_username="centre")
    session.flush()
    stored = {d.id: (d.kind, d.location) for d in session.scalars(select(Device))}
    assert stored == {"pir-1": ("motion", "kitchen"), "front-door": ("door", "front_door"),
                      "pendant-1": ("pendant", "")}


@pytest.mark.parametrize(("text", "says"), [
    ("kettle-1:kettle", "Kinds: pendant, door, bed, motion, oximeter"),
    ("kettle", "it has no kind. Write the device's name, a colon and its kind, for example pendant-1:pendant"),
    ("pir-1:motion:attic", "Write one of front_door"),
    ("Pir 1:motion", "device id"),
])
def test_a_wrong_device_is_refused_with_what_to_write(text: str, says: str) -> None:
    with pytest.raises(admin.AdminError, match=re.escape(says)) as refused:
        admin.parse_device(text)
    for placeholder in ("ID:KIND", "LOCATION", "BED_SENSOR"):
        assert placeholder not in str(refused.value)


def _files(session: Session, directory: Path, owner: str | None) -> list[Path]:
    return admin.broker_files(session, directory, centre_username="centre", centre_password=secrets.token_urlsafe(16),
                              owner=owner)


def test_with_an_owner_the_files_are_theirs_and_group_readable(session: Session, tmp_path: Path) -> None:
    me = pwd.getpwuid(os.geteuid())
    written = _files(session, tmp_path / "broker", me.pw_name)
    for path in written:
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, me.pw_uid, me.pw_gid), path
    directory = (tmp_path / "broker").stat()
    assert (stat.S_IMODE(directory.st_mode), directory.st_gid) == (0o2750, me.pw_gid)


def _broker_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user here (Debian's mosquitto package creates it)")


def _not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as the centre's own user would: no giving files away, and not in the broker's group."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    def chown(path: object, uid: int, gid: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "chown", chown)


@pytest.fixture
def searchable() -> Iterator[Path]:
    """A directory anyone may pass through, as /etc is (pytest's own base directory is not)."""
    path = Path(tempfile.mkdtemp(prefix="telecare-admin-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_as_another_user_a_set_group_id_directory_gives_the_files_the_brokers_group(
        session: Session, searchable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _broker_user()
    directory = searchable / "broker"
    directory.mkdir()
    os.chown(directory, -1, broker.pw_gid)
    directory.chmod(0o2750)  # install -d -m 2750 -g mosquitto, as docs/operating.md says
    _not_root(monkeypatch)
    for path in _files(session, directory, "mosquitto"):
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, broker.pw_gid), path


def test_as_another_user_without_the_group_the_files_are_refused_with_the_way_out(
        session: Session, searchable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _broker_user()
    directory = searchable / "broker"
    directory.mkdir(mode=0o755)
    _not_root(monkeypatch)
    with pytest.raises(admin.AdminError, match="set-group-id directory of group mosquitto"):
        _files(session, directory, "mosquitto")
    assert sorted(path.name for path in directory.iterdir()) == []  # nothing half-written left behind


def test_without_an_owner_the_files_are_private(session: Session, tmp_path: Path) -> None:
    for path in _files(session, tmp_path / "broker", None):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_directory_the_broker_cannot_enter_is_refused_before_writing(session: Session, tmp_path: Path) -> None:
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)  # like pytest's own base directory: only its owner may enter
    with pytest.raises(admin.AdminError, match=r"user nobody cannot enter /\S+ \(mode 700"):
        _files(session, closed / "broker", "nobody")
    assert not (closed / "broker").exists()


def test_an_unknown_owner_is_refused(session: Session, tmp_path: Path) -> None:
    with pytest.raises(admin.AdminError, match="no such user"):
        _files(session, tmp_path / "broker", "no-such-broker-user")


def test_the_default_owner_is_debians_mosquitto_user_when_there_is_one() -> None:
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        assert admin.default_broker_owner() is None
    else:
        assert admin.default_broker_owner() == "mosquitto"
