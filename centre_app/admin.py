"""Running a centre: putting homes and people on its books, accounts, and the broker's files.

The centre's database is the one place hub credentials are kept, and only as hashes:
`broker_files` renders Mosquitto's password and ACL files from it, so enrolling a hub or
rotating its password is one command and a broker reload.
"""

import grp
import os
import pwd
import re
import secrets
import stat
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from centre_app.auth import create_user
from centre_app.fhir_gateway import clients as fhir_clients
from detection.people import BedSensorKind, Location
from monitoring_centre.broker import mosquitto_password_hash, password_file_text
from monitoring_centre.enrolment import DeviceRecord, HubIdRefused, check_hub_id, enrol_home, reserved_hub_ids
from monitoring_centre.nhs_number import normalise
from monitoring_centre.storage import Hub, Person
from telecare_protocol.codes import DeviceKind
from telecare_protocol.messages import Identifier
from telecare_protocol.topics import CENTRE_ACL, HUB_ACL

DEVICE_KINDS = tuple(kind.value for kind in DeviceKind)
"""Every kind a hub supports: the one list is `telecare_protocol.codes.DeviceKind`."""
LOCATIONS: tuple[str, ...] = typing.get_args(Location)
"""Where in the home a device may be, as the activity rules know places (`detection.people.Location`)."""
BED_SENSOR_KINDS: tuple[str, ...] = tuple(kind.value for kind in BedSensorKind)
"""What a bed sensor's events mean (`detection.people.BedSensorKind`): `occupancy` or `pulse`."""
SERVICES = ("monitored", "keyholder_only")
DEFAULT_BROKER_USER = "mosquitto"
"""The user Debian's Mosquitto runs as once it has dropped root."""
_identifier = TypeAdapter(Identifier)


class AdminError(ValueError):
    """A request an administrator must correct; the message says what is wrong."""


@dataclass(frozen=True)
class HubCredentials:
    hub_id: str
    password: str = field(repr=False)


def check_identifier(value: str, what: str) -> str:
    try:
        return _identifier.validate_python(value)
    except ValidationError:
        raise AdminError(f"{what} {value!r}: lower-case letters, digits, '-' and '_', at most 63") from None


def parse_device(text: str) -> DeviceRecord:
    """`ID:KIND[:LOCATION[:BED_SENSOR]]` → a device record: `pendant-1:pendant`, `pir-1:motion:kitchen`,
    `mat-1:bed:bed:pulse`.

    KIND is one of `DEVICE_KINDS`; LOCATION, if given, one of `LOCATIONS` (the activity rules
    use it; without it they place the device by its kind); BED_SENSOR, only for LOCATION `bed`,
    one of `BED_SENSOR_KINDS`: `occupancy` (the default: a mat that says occupied and vacated) or
    `pulse` (a pulse-on-movement mat, whose silence the rules read as unknown). Raises
    `AdminError` naming the part that is wrong."""
    device_id, _, rest = text.partition(":")
    kind, _, rest = rest.partition(":")
    location, _, bed_sensor = rest.partition(":")
    if kind not in DEVICE_KINDS:
        what = f"the kind {kind!r} is not one we know" if kind else "it has no kind"
        raise AdminError(f"device {text!r}: {what}. Write the device's name, a colon and its kind, for example "
                         f"pendant-1:pendant; for a sensor add a colon and the room, for example "
                         f"pir-1:motion:kitchen. Kinds: {', '.join(DEVICE_KINDS)}")
    if location and location not in LOCATIONS:
        raise AdminError(f"device {text!r}: the room {location!r} is not one we know. Write one of "
                         f"{', '.join(LOCATIONS)} after the kind, for example pir-1:motion:kitchen")
    bed_kind = BedSensorKind.OCCUPANCY
    if bed_sensor:
        if location != "bed":
            raise AdminError(f"device {text!r}: only a device in the bed can say what sort of bed sensor it is, "
                             f"for example mat-1:bed:bed:pulse")
        if bed_sensor not in BED_SENSOR_KINDS:
            raise AdminError(f"device {text!r}: the bed sensor {bed_sensor!r} is not one we know. Write one of "
                             f"{', '.join(BED_SENSOR_KINDS)} last, for example mat-1:bed:bed:pulse")
        bed_kind = BedSensorKind(bed_sensor)
    return DeviceRecord(check_identifier(device_id, "device id"), kind, location=location, bed_sensor_kind=bed_kind)


def new_hub_password() -> str:
    return secrets.token_urlsafe(24)


def enrol(session: Session, *, name: str, address: str, hub_id: str, devices: list[DeviceRecord],
          centre_username: str, nhs_number: str | None = None, service: str = "monitored",
          allow_test_nhs_numbers: bool = False) -> tuple[Person, HubCredentials]:
    """A person, their hub and devices. Returns the hub's broker password: shown once, kept hashed.

    The hub id is its broker username: `monitoring_centre.enrolment.check_hub_id` refuses one that
    breaks the protocol's id pattern, is reserved (`centre`, `admin`, `mosquitto`, ...) or is
    `centre_username`, the centre's own broker account (its setting `TELECARE_MQTT_USERNAME`).
    An NHS number must be one that can belong to a person (`monitoring_centre.nhs_number`);
    `allow_test_nhs_numbers` (the centre's setting) lets the synthetic test range in. Raises
    `AdminError` saying what is wrong."""
    try:
        check_hub_id(hub_id, centre_username=centre_username)
    except HubIdRefused as problem:
        raise AdminError(str(problem)) from None
    if session.get(Hub, hub_id) is not None:
        raise AdminError(f"hub {hub_id!r} is already enrolled")
    if service not in SERVICES:
        raise AdminError(f"service {service!r}: one of {', '.join(SERVICES)}")
    number = None
    if nhs_number:
        try:
            number = normalise(nhs_number, allow_test_numbers=allow_test_nhs_numbers)
        except ValueError as problem:
            raise AdminError(f"NHS number: {problem}") from None
        if session.scalar(select(Person.id).where(Person.nhs_number == number)) is not None:
            raise AdminError("a person with this NHS number is already enrolled")
    person = enrol_home(session, name=name, address=address, hub_id=hub_id, devices=devices, nhs_number=number)
    person.service = service
    credentials = rotate_hub_password(session, hub_id)
    return person, credentials


def rotate_hub_password(session: Session, hub_id: str) -> HubCredentials:
    """A new broker password for a hub; the old one stops working when the broker reloads."""
    hub = session.get(Hub, hub_id)
    if hub is None:
        raise AdminError(f"no hub {hub_id!r}")
    password = new_hub_password()
    hub.broker_password_hash = mosquitto_password_hash(password)
    return HubCredentials(hub_id, password)


def add_user(session: Session, username: str, role: str, *, display_name: str = "",
             person_id: int | None = None) -> str:
    """An account with a generated password, returned once."""
    if not re.fullmatch(r"[A-Za-z0-9._@-]{2,100}", username):
        raise AdminError(f"username {username!r}: 2-100 letters, digits, '.', '_', '@' or '-'")
    password = secrets.token_urlsafe(15)
    try:
        create_user(session, username, password, role, display_name, person_id=person_id)
    except ValueError as problem:
        raise AdminError(str(problem)) from None
    return password


@dataclass(frozen=True)
class BrokerUser:
    """The account the broker runs as (Debian's Mosquitto drops from root to `mosquitto`)."""

    name: str
    uid: int
    gid: int
    """Its primary group: the broker's files get this group, mode 640."""
    groups: frozenset[int]
    """Every group it is in, for checking it can enter the directories on the way."""

    @classmethod
    def named(cls, name: str) -> "BrokerUser":
        """Raises `AdminError` if there is no such user on this host."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise AdminError(f"--owner {name!r}: no such user on this host") from None
        return cls(name, entry.pw_uid, entry.pw_gid, frozenset(os.getgrouplist(name, entry.pw_gid)))


def default_broker_owner() -> str | None:
    """`mosquitto` where that user exists (Debian's package creates it), else None."""
    try:
        pwd.getpwnam(DEFAULT_BROKER_USER)
    except KeyError:
        return None
    return DEFAULT_BROKER_USER


def _may_enter(user: BrokerUser, directory: Path) -> bool:
    info = directory.stat()
    if user.uid == 0:
        return True
    if info.st_uid == user.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in user.groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _check_reachable(user: BrokerUser, directory: Path) -> None:
    """Raise `AdminError` naming the first existing directory on the way that `user` may not
    enter (`directory` itself included; those not made yet are made for it)."""
    for ancestor in reversed([directory, *directory.parents]):
        if ancestor.exists() and not _may_enter(user, ancestor):
            info = ancestor.stat()
            raise AdminError(f"user {user.name} cannot enter {ancestor} (mode {stat.S_IMODE(info.st_mode):o}, "
                             f"owner uid {info.st_uid}, group gid {info.st_gid}), so the broker could not read its "
                             f"files there: let it in (e.g. chmod o+x {ancestor}) or write them elsewhere")


def hubs_left_out(session: Session, *, centre_username: str) -> dict[str, str]:
    """Enrolled hubs that get no broker account, each with the reason: their id is reserved or is the
    centre's own broker username (enrolled before `enrol` refused such ids). Their account would
    shadow the centre's, or another's, in the broker's password file."""
    return reserved_hub_ids(session.scalars(select(Hub.id).order_by(Hub.id)), centre_username=centre_username)


def broker_files(session: Session, directory: Path, *, centre_username: str, centre_password: str,
                 owner: str | None = None) -> list[Path]:
    """Mosquitto's password and ACL files for every enrolled hub and the centre. Returns their paths.

    A hub whose id `hubs_left_out` names gets no account: the centre's own line is then the only
    one of its name, so writing the files (and reloading the broker) also repairs a broker that an
    earlier hub enrolled as `centre` had shut the centre out of. Two accounts of one name are never
    written (`monitoring_centre.broker.password_file_text` raises `ValueError`).

    Mosquitto started as root reads these files after it has dropped to its own user, so with
    `owner` (a user name, usually `mosquitto`) they are made readable by that user, mode 640:
    run as root, they become that user's and its primary group's; run as another user (the
    centre's, whom PostgreSQL knows), they get that group, which needs either membership of
    it or a set-group-id directory of that group (`install -d -m 2750 -g mosquitto DIR`: files
    made there take its group). A directory created here gets the group, mode 2750. Without
    `owner` they stay the caller's, mode 600 (a broker running as the caller). Each file is
    replaced atomically, so a reloading broker never reads half of one.

    Raises `AdminError`, before writing anything, if `owner` is not a user here or cannot
    enter a directory on the way to `directory`; and, leaving the old files in place, if the
    files cannot be given to `owner` or its group."""
    user = BrokerUser.named(owner) if owner else None
    left_out = hubs_left_out(session, centre_username=centre_username)
    accounts = [(centre_username, mosquitto_password_hash(centre_password))]
    for hub_id, password_hash in session.execute(select(Hub.id, Hub.broker_password_hash).order_by(Hub.id)):
        if password_hash and hub_id not in left_out:
            accounts.append((hub_id, password_hash))
    try:
        passwords = password_file_text(accounts)
    except ValueError as problem:  # the centre's own username is unusable (TELECARE_MQTT_USERNAME)
        raise AdminError(str(problem)) from None
    acl = [
        "# Generated by `telecare admin broker-files`: each hub writes only under its own id and reads only",
        "# its own acks; the centre reads every hub and writes the acks.",
        *HUB_ACL,
        "",
        f"user {centre_username}",
        *CENTRE_ACL,
        "",
    ]
    directory = directory.absolute()
    if user is not None:
        _check_reachable(user, directory)
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        if user is not None:
            _give(directory, user, 0o2750, take=False)
    mode = 0o640 if user is not None else 0o600
    written = []
    for name, text in (("passwd", passwords), ("acl", "\n".join(acl))):
        path = directory / name
        temporary = path.with_suffix(".new")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        if user is not None:
            try:
                _give(temporary, user, mode, take=True)
            except AdminError:
                temporary.unlink()
                raise
        temporary.replace(path)  # atomic: a reloading broker never reads half a file
        written.append(path)
    return written


def _give(path: Path, user: BrokerUser, mode: int, *, take: bool) -> None:
    """`path` gets `user`'s primary group and `mode`; with `take`, run as root, `user` owns it too."""
    uid = user.uid if take and os.geteuid() == 0 else -1
    if uid != -1 or path.stat().st_gid != user.gid:  # a set-group-id directory may have given it already
        try:
            os.chown(path, uid, user.gid)
        except PermissionError:
            group = grp.getgrgid(user.gid).gr_name
            raise AdminError(f"cannot give {path} to user {user.name} or group {group}: run as root, or write into "
                             f"a set-group-id directory of group {group} (install -d -m 2750 -g {group} DIR), or "
                             "pass --owner none if the broker runs as you") from None
    path.chmod(mode)


ADMIN_CLI_ACTOR = "system:telecare-admin"
"""Who the audit log names for a change made with `telecare admin` (it has no signed-in user)."""


def add_fhir_client(session: Session, *, client_id: str, name: str, public_key: str, scopes: list[str],
                    person_ids: list[int] | None, purpose: str = fhir_clients.DEFAULT_PURPOSE,
                    by: str = ADMIN_CLI_ACTOR) -> dict[str, object]:
    """Register a system to read from the FHIR gateway (`centre_app/fhir_gateway/clients.py`):
    `public_key` a PEM public key or a JWKS, `scopes` from `fhir_clients.SCOPES`, `person_ids`
    the people it may see (None: everyone). Audited `fhir_client_registered`. Returns what the
    client's operators need: `{"client_id", "scopes", "people", "token_url_path"}`. Raises
    `AdminError` saying what is wrong."""
    try:
        row = fhir_clients.register(session, client_id=client_id, name=name, public_key=public_key, scopes=scopes,
                                    person_ids=person_ids, purpose=purpose, by=by)
    except fhir_clients.ClientRefused as problem:
        raise AdminError(str(problem)) from None
    return {"client_id": row.client_id, "scopes": row.scopes, "people": "all" if row.person_ids is None
            else row.person_ids, "token_url_path": "/fhir/token"}


def deactivate_fhir_client(session: Session, client_id: str, *, by: str = ADMIN_CLI_ACTOR) -> None:
    """The client gets no more tokens and its tokens stop working. Audited. Raises `AdminError`."""
    try:
        fhir_clients.deactivate(session, client_id, by=by)
    except fhir_clients.ClientRefused as problem:
        raise AdminError(str(problem)) from None
