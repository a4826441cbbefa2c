"""`telecare demo`: one simulated home, its hub, a broker and the centre, in one process.

Nothing needs installing first: Mosquitto is used when it is installed, otherwise an
embedded Python broker. Every credential is generated on the spot: one account for each role
(operator, nurse, team lead, administrator, the person at home, a family member she consented
to), printed and written to `demo-credentials.json` (mode 600) in the data directory.

Each run starts afresh: what an earlier run left in the data directory (its database, the
broker's saved sessions, the kept mail: `DEMO_FILES`, `DEMO_DIRS`) is removed first, so its
alarms are not still open and gaining repeats. `--keep-data` keeps it. Nothing else in the
directory is touched.
"""

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
from dataclasses import dataclass
from datetime import date as calendar_date
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from centre_app.auth import create_user, hash_password
from centre_app.centre import Centre
from centre_app.settings import CentreSettings, default_sqlite_url
from device_sims.demo_day import DEMO_DEVICES, DEMO_HUB_ID, play_demo_day
from hub_agent.agent import HubAgent
from hub_agent.uplink import Uplink
from monitoring_centre import access
from monitoring_centre.broker import BrokerAccount, start_broker
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.export import CURSOR_FILE
from monitoring_centre.roles import Role
from monitoring_centre.storage import ContactPoint, Hub, Person, PersonContact, Responder, User, utc_now
from telecare.demo_history import seed_demo
from telecare.demo_mail import start_outbox
from telecare.demo_summary import summary_lines

OPERATOR = "operator"
@dataclass(frozen=True)
class DemoAccount:
    username: str
    name: str
    """The account's display name, as the pages show it."""
    description: str
    """Who this is in the demo: only for the printed sign-in list."""


SUSAN = "Susan Hughes"
"""Margaret's daughter: her account and her keyholder entry both carry this name."""
ACCOUNTS: dict[Role, DemoAccount] = {
    Role.OPERATOR: DemoAccount(OPERATOR, "Nina Patel", "a centre operator"),
    Role.NURSE: DemoAccount("nurse", "Jane Smith", "a community nurse, Margaret on her caseload"),
    Role.TEAM_LEAD: DemoAccount("teamlead", "Priya Shah", "the nursing team lead"),
    Role.ADMIN: DemoAccount("admin", "Tom Reed", "the centre's administrator"),
    Role.PERSON: DemoAccount("margaret", "Margaret Hughes", "the person at home"),
    Role.FAMILY: DemoAccount("susan", SUSAN, "Margaret's daughter and keyholder; Margaret consented to her "
                                           "seeing her record"),
}
"""One account for every role (`monitoring_centre.roles.Role`), each with a fresh password every run."""
DEMO_CENTRE_PHONE = "01632 960 123"
"""The demo centre's phone number on the accept page: from Ofcom's range kept for drama (01632 960xxx),
so no one real is ever called from a demo."""
CREDENTIALS_FILE = "demo-credentials.json"
DEMO_FILES = ("centre.db", "centre.db-wal", "centre.db-shm", "centre.db-journal", CREDENTIALS_FILE, CURSOR_FILE)
"""What a run writes in the data directory: the SQLite database (`default_sqlite_url`) with its
journal files, the operator's credentials and the export cursor."""
DEMO_DIRS = ("broker", "outbox")
"""The broker's configuration and saved sessions, and the mail kept for the simulated keyholder."""


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, without a moment of wider permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def prepare_data_dir(data_dir: Path) -> Path:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    return data_dir


def clear_previous_run(data_dir: Path) -> list[str]:
    """Remove what an earlier run left in `data_dir` (`DEMO_FILES`, `DEMO_DIRS`), nothing else.
    Returns the names removed, in that order."""
    removed = []
    for name in DEMO_FILES:
        path = data_dir / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(name)
    for name in DEMO_DIRS:
        path = data_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(name)
    return removed


async def run_demo(*, data_dir: Path, port: int, duration: float | None, broker: str = "auto",
                   keep_data: bool = False) -> int:
    """Run the demo until `duration` seconds have passed (None: until SIGINT or SIGTERM). Returns 0.
    Without `keep_data`, an earlier run's data in `data_dir` is removed first."""
    data_dir = prepare_data_dir(data_dir)
    cleared = [] if keep_data else clear_previous_run(data_dir)
    passwords = {role: secrets.token_urlsafe(12) for role in ACCOUNTS}
    operator_password = passwords[Role.OPERATOR]
    hub_account = BrokerAccount(DEMO_HUB_ID, secrets.token_urlsafe(24), "hub")
    centre_account = BrokerAccount("centre", secrets.token_urlsafe(24), "centre")

    running = start_broker(data_dir / "broker", [hub_account, centre_account], prefer=broker)
    outbox = start_outbox(data_dir / "outbox")
    mqtt_v5 = running.mqtt5
    settings = CentreSettings(
        database_url=default_sqlite_url(data_dir), jwt_secret=secrets.token_urlsafe(48),
        mqtt_host=running.host, mqtt_port=running.port, mqtt_username=centre_account.username,
        mqtt_password=centre_account.password, mqtt_v5=mqtt_v5, http_port=port,
        smtp={"host": outbox.hostname, "port": outbox.port, "starttls": False, "mail_from": "centre@demo.invalid"},
        allow_test_nhs_numbers=True,  # a demo's people are made up: only test-range NHS numbers belong here
        centre_phone=DEMO_CENTRE_PHONE,
    )
    centre = Centre(settings)
    _enrol_demo_home(centre, passwords)
    seeded = seed_demo(centre.sessions, now=utc_now(), timezone=settings.timezone)  # Margaret's last 30 days
    live_from = utc_now()
    write_private(data_dir / CREDENTIALS_FILE, json.dumps({
        "username": OPERATOR, "password": operator_password,
        "accounts": {role.value: {"username": ACCOUNTS[role].username, "password": passwords[role]}
                     for role in ACCOUNTS},
    }) + "\n")

    hub = HubAgent(DEMO_HUB_ID, DEMO_DEVICES, Uplink(hub_id=DEMO_HUB_ID, password=hub_account.password,
                                                     host=running.host, port=running.port, mqtt_v5=mqtt_v5),
                   heartbeat_interval_s=30)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    centre_task = asyncio.create_task(centre.serve(), name="centre")
    if not await _listening(centre, centre_task):
        (failure,) = await asyncio.gather(centre_task, return_exceptions=True)
        running.stop()
        outbox.stop()
        print(f"The demo could not start: {failure}. Is another demo running? "
              '`make demo ARGS="--port 8090"` picks another port.', flush=True)
        return 2
    hub_task = asyncio.create_task(hub.run(), name="hub")
    home_task = asyncio.create_task(play_demo_day(hub.radio), name="home")
    broker_kind = "Mosquitto" if mqtt_v5 else "embedded Python broker (MQTT 3.1.1)"
    print(f"Telecare demo: sign in at {centre.url}/signin (each role lands on its own pages)", flush=True)
    print("  sign in as any of these (one account for each role):", flush=True)
    for role, account in ACCOUNTS.items():
        print(f"    {role.value:<9} {account.username!r} with password {passwords[role]!r}: {account.name}, "
              f"{account.description}", flush=True)
    print(f"  (also in {data_dir / CREDENTIALS_FILE}); broker: {broker_kind}", flush=True)
    if cleared:
        print(f"  a fresh start: the previous run's data in {data_dir} was cleared (--keep-data keeps it)",
              flush=True)
    elif keep_data:
        print(f"  --keep-data: carrying on with the data in {data_dir}", flush=True)
    print(f"  alarms nobody acknowledges reach the keyholder after 3 minutes: mail kept in {data_dir / 'outbox'}",
          flush=True)
    if seeded is not None:
        print(f"  Margaret's last 30 days ({seeded.messages} messages: readings, bed and door) went through the "
              f"centre first; alerts from them: {len(seeded.alerts)} (the nurse's review tasks)", flush=True)
    print("  Ctrl-C stops everything." if duration is None else f"  stopping by itself after {duration:g} s.",
          flush=True)
    outbox.handler.show()  # the mail that went out while the centre started, after where to sign in
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    finally:
        stopping_at = utc_now()  # what the stop itself causes (the hub going offline) is not the demo's day
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        home_task.cancel()
        hub_task.cancel()
        await asyncio.gather(home_task, hub_task, return_exceptions=True)
        await asyncio.sleep(0.5)  # let the centre store the hub's last messages
        centre.server.should_exit = True
        await asyncio.gather(centre_task, return_exceptions=True)
        running.stop()
        outbox.stop()
    _print_summary(centre, started=live_from, before=stopping_at, data_dir=data_dir)
    return 0


async def _listening(centre: Centre, serving: "asyncio.Task[None]") -> bool:
    """True once the centre's web server listens; False if it stopped first (its port taken)."""
    while not centre.server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.05)
    return True


def _enrol_demo_home(centre: Centre, passwords: dict[Role, str]) -> None:
    with centre.sessions() as session, session.begin():
        if session.get(Hub, DEMO_HUB_ID) is None:
            person = enrol_home(session, name="Margaret Hughes", address="12 Orchard Close (simulated)",
                                hub_id=DEMO_HUB_ID, nhs_number="9990001235",  # test range, valid check digit
                                devices=[DeviceRecord(d.device_id, d.kind.value) for d in DEMO_DEVICES])
            person.access_details = "Key safe to the left of the front door, code 1234 (simulated)"
            # The caller record an operator reads on a call (issue 12; `monitoring_centre/caller_record.py`).
            person.date_of_birth = calendar_date(1941, 3, 14)
            person.phones = [{"label": "home", "number": "01632 960461"}, {"label": "mobile", "number": "07700 900461"}]
            person.conditions = "COPD (on home oximetry); atrial fibrillation; mild memory problems (simulated)"
            person.medication_summary = "Inhalers (Trelegy, salbutamol); apixaban (a blood thinner); bisoprolol"
            person.allergies = "Penicillin (rash)"
            person.communication_needs = "Hard of hearing in the left ear: speak slowly and clearly"
            person.property_risks = "Steep steps to the front door; no oxygen in the home"
            person.pets = "A cat, Smudge (friendly)"
            person.gp_practice = "Orchard Surgery, 01632 960999 (simulated)"
            person.operator_notes = "Front door on Orchard Close; the porch light is on a timer; parking on the street"
            session.add(Responder(name="Centre operators", role="operator", active=True))
            # The community nurse's team inbox: a trend or a missed measurement is e-mailed there
            # (the nurse-review chain); without it the demo's review tasks reached nobody.
            nurses = Responder(name=f"{ACCOUNTS[Role.NURSE].name} (community nursing team)", role="nurse", active=True)
            session.add(nurses)
            session.flush()
            session.add(ContactPoint(responder_id=nurses.id, address="mailto:community.nurses@demo.invalid",
                                     position=0))
            daughter = Responder(name=SUSAN, role="keyholder", active=True)
            session.add(daughter)
            session.flush()
            session.add(ContactPoint(responder_id=daughter.id, address="mailto:susan@demo.invalid", position=0))
            # A number for the operator to phone (a `tel:` contact point: shown, never sent to; Ofcom's drama range).
            session.add(ContactPoint(responder_id=daughter.id, address="tel:07700900123", position=1))
            session.add(PersonContact(person_id=person.id, responder_id=daughter.id, position=0,
                                      nominated_at=utc_now()))
            for contact in session.scalars(select(PersonContact).where(PersonContact.person_id == person.id)):
                contact.relationship = "daughter"
        person = session.scalars(select(Person).join(Hub, Hub.person_id == Person.id)
                                 .where(Hub.id == DEMO_HUB_ID)).one()
        for role, account in ACCOUNTS.items():
            user = session.scalar(select(User).where(User.username == account.username))
            if user is None:
                user = create_user(session, account.username, passwords[role], role.value, account.name,
                                   person_id=person.id if role == Role.PERSON else None)
                if role in (Role.NURSE, Role.TEAM_LEAD):  # direct care: Margaret is on their caseload
                    access.grant(session, user, person, "direct_care")
            else:  # a new password for every run: no credential outlives the demo that printed it
                user.password_hash = hash_password(passwords[role])
                user.display_name = account.name
        family = session.scalars(select(User).where(User.username == ACCOUNTS[Role.FAMILY].username)).one()
        if person.id not in (access.visible_person_ids(session, family) or set()):
            margaret = session.scalars(select(User).where(User.username == ACCOUNTS[Role.PERSON].username)).one()
            access.give_consent(session, margaret, person, family, "my daughter, Susan (demo)")
        # Susan is also Margaret's keyholder: her page shows the centre's requests to go (issue 13).
        from monitoring_centre.storage import ResponderAccount  # here: the demo's lines are added, never changed
        keyholder = session.scalar(select(Responder).where(Responder.name == SUSAN, Responder.role == "keyholder"))
        if keyholder is not None and session.scalar(select(ResponderAccount).where(
                ResponderAccount.user_id == family.id)) is None:
            session.add(ResponderAccount(user_id=family.id, responder_id=keyholder.id, linked_at=utc_now(),
                                         linked_by="demo"))
        # A community team with the nurse and the team lead on it, Margaret on its caseload (issue 13).
        from monitoring_centre import teams  # here: the demo's lines are added, never changed
        from monitoring_centre.storage import Team  # here: the demo's lines are added, never changed
        team = session.scalar(select(Team).where(Team.name == "Demo community team"))
        if team is None:
            team = teams.create_team(session, "Demo community team", by="demo")
            for username in (ACCOUNTS[Role.NURSE].username, ACCOUNTS[Role.TEAM_LEAD].username):
                teams.add_member(session, team, session.scalars(select(User).where(User.username == username)).one(),
                                 by="demo")
            teams.assign_to_team(session, person, team, by="demo")


def _print_summary(centre: Centre, *, started: datetime, before: datetime, data_dir: Path) -> None:
    """What was raised, what was still waiting at the stop, the keyholder messages, how to look again
    (`telecare.demo_summary`); only what happened before the demo was asked to stop."""
    with centre.sessions() as session:
        lines = summary_lines(session, started=started, before=before, data_dir=data_dir)
    print("\n".join(lines), flush=True)
