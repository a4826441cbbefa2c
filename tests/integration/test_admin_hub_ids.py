"""`telecare admin` never gives a hub the name of another broker account: enrolling a hub as
`centre` (or as whatever the centre's settings call its own broker account) is refused with exit
status 2, and a hub already on the books under such a name (from before the check) gets no line in
the broker's password file, so the files `broker-files` writes let the real centre into a real
Mosquitto again."""

import os
import secrets
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from monitoring_centre.broker import BrokerAccount, mosquitto_password_hash, verify_mosquitto_password
from monitoring_centre.storage import Hub, Person, make_engine
from tests.integration.test_admin import Env, start_mosquitto
from tests.support.helpers import close, mqtt_client


@pytest.fixture
def env(tmp_path: Path) -> Env:
    values = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
    values |= {"TELECARE_DATABASE_URL": f"sqlite:///{tmp_path / 'centre.db'}",
               "TELECARE_JWT_SECRET": secrets.token_urlsafe(48), "TELECARE_MQTT_PASSWORD": secrets.token_urlsafe(24)}
    return Env(values)


def passwd_names(directory: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in (directory / "passwd").read_text().splitlines()]


def test_enrolling_a_hub_under_another_accounts_name_is_refused(env: Env, tmp_path: Path) -> None:
    env.values["TELECARE_MQTT_USERNAME"] = "ops-centre"
    for hub_id, says in (("ops-centre", "the centre's own broker username"), ("centre", "is reserved"),
                         ("mosquitto", "is reserved")):
        done = env.telecare("admin", "enrol", "--name", "Ada", "--hub-id", hub_id, "--device", "pendant-1:pendant")
        assert done.returncode == 2, done.stdout
        assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    env.ok("admin", "broker-files", "--out", str(tmp_path / "broker"), "--owner", "none")
    assert passwd_names(tmp_path / "broker") == ["ops-centre"]  # nothing was enrolled


def test_a_hub_on_the_books_as_the_centre_is_left_out_and_the_centre_gets_back_in(env: Env, tmp_path: Path) -> None:
    ada = env.ok("admin", "enrol", "--name", "Ada", "--hub-id", "hub-0042")
    # As an older centre let it happen: a second home enrolled with hub id `centre`.
    impostor_password = secrets.token_urlsafe(24)
    engine = make_engine(env.values["TELECARE_DATABASE_URL"])
    with sessionmaker(engine)() as session, session.begin():
        person = Person(name="Bob", address="")
        session.add(person)
        session.flush()
        session.add(Hub(id="centre", person_id=person.id, broker_password_hash=mosquitto_password_hash(
            impostor_password)))
    engine.dispose()

    broker_dir = tmp_path / "broker"
    done = env.telecare("admin", "broker-files", "--out", str(broker_dir), "--owner", "none")
    assert done.returncode == 0, done.stderr
    assert "hub 'centre' left out" in done.stderr
    assert passwd_names(broker_dir) == ["centre", "hub-0042"]
    centre_hash = (broker_dir / "passwd").read_text().splitlines()[0].split(":", 1)[1]
    assert verify_mosquitto_password(centre_hash, env.values["TELECARE_MQTT_PASSWORD"])

    for broker in start_mosquitto(broker_dir):
        close(mqtt_client(broker, BrokerAccount("centre", env.values["TELECARE_MQTT_PASSWORD"], "centre")))
        close(mqtt_client(broker, BrokerAccount("hub-0042", ada["hub_password"], "hub")))
        with pytest.raises(ConnectionRefusedError):
            mqtt_client(broker, BrokerAccount("centre", impostor_password, "centre"))

    refused = env.telecare("admin", "rotate-hub-password", "centre")
    assert refused.returncode == 2 and "no broker account" in refused.stderr
