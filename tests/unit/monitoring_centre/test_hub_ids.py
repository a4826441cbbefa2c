"""A hub's id is its broker username, so it is never another account's name: the protocol's id
pattern, no reserved name, never the centre's own username; and no password file ever holds two
accounts of one name."""

from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from centre_app import schema
from monitoring_centre.broker import BrokerAccount, EmbeddedBroker, Mosquitto, password_file_text
from monitoring_centre.enrolment import RESERVED_HUB_IDS, HubIdRefused, check_hub_id, enrol_home, reserved_hub_ids
from monitoring_centre.storage import make_engine


@pytest.mark.parametrize("hub_id", ["hub-0042", "h", "0", "hub_1", "centre-1", "a" * 63])
def test_a_hub_id_of_the_protocols_pattern_is_accepted(hub_id: str) -> None:
    assert check_hub_id(hub_id, centre_username="centre") == hub_id


@pytest.mark.parametrize("hub_id", sorted(RESERVED_HUB_IDS))
def test_a_reserved_name_is_refused_whatever_the_settings(hub_id: str) -> None:
    with pytest.raises(HubIdRefused, match="is reserved"):
        check_hub_id(hub_id, centre_username="ops-centre")
    with pytest.raises(HubIdRefused):
        check_hub_id(hub_id)


@pytest.mark.parametrize("centre_username", ["ops-centre", "Ops-Centre"])
def test_the_centres_own_username_is_refused(centre_username: str) -> None:
    with pytest.raises(HubIdRefused, match="the centre's own broker username"):
        check_hub_id("ops-centre", centre_username=centre_username)
    assert check_hub_id("ops-centre", centre_username="centre") == "ops-centre"


@pytest.mark.parametrize("hub_id", ["Hub-1", "hub 1", "hub/1", "hub+", "#", "$sys", "", "-hub", "a" * 64])
def test_an_id_outside_the_pattern_is_refused(hub_id: str) -> None:
    with pytest.raises(HubIdRefused, match="lower-case letters"):
        check_hub_id(hub_id)


def test_reserved_ids_already_on_the_books_are_named_with_why() -> None:
    found = reserved_hub_ids(["hub-1", "centre", "ops", "admin"], centre_username="ops")
    assert sorted(found) == ["admin", "centre", "ops"]
    assert "centre's own broker username" in found["ops"]


def test_enrolling_a_home_under_a_reserved_hub_id_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    with sessionmaker(engine)() as session, pytest.raises(HubIdRefused):
        enrol_home(session, name="Ada", address="", hub_id="centre", devices=[])
    engine.dispose()


def test_a_hub_account_cannot_take_a_reserved_name_but_the_centre_keeps_its_own() -> None:
    with pytest.raises(HubIdRefused):
        BrokerAccount("centre", "password-not-used", "hub")
    assert BrokerAccount("centre", "password-not-used", "centre").username == "centre"


def test_two_accounts_of_one_name_are_never_rendered(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two broker accounts named 'centre'"):
        password_file_text([("centre", "$7$101$a$b"), ("hub-1", "$7$101$c$d"), ("centre", "$7$101$e$f")])
    twice = [BrokerAccount.generate("hub-1", "hub"), BrokerAccount.generate("hub-1", "hub")]
    with pytest.raises(ValueError, match="duplicate broker username"):
        Mosquitto(tmp_path / "mosquitto", twice, executable="mosquitto")
    with pytest.raises(ValueError, match="duplicate broker username"):
        EmbeddedBroker(twice)
    assert not (tmp_path / "mosquitto").exists()  # refused before anything was written
    assert password_file_text([("centre", "$7$1$a$b"), ("hub-1", "$7$1$c$d")]) == "centre:$7$1$a$b\nhub-1:$7$1$c$d\n"
