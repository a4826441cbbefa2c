"""Fleet mode against a real Mosquitto: one login per virtual hub, QoS 1, at the configured
rate, and nothing lost. Also the accounts a fleet needs, made by `telecare sim accounts`."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from telecare.cli import main
from telecare_protocol.topics import SUBSCRIPTION
from tests.support.helpers import mqtt_client, subscribe
from tests.support.waiting import wait_for

HOMES = 50
RATE = 500.0


@pytest.fixture
def fleet_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Mosquitto, Path, BrokerAccount]]:
    """Mosquitto with the accounts `telecare sim accounts` made for the fleet, plus a centre."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    out = tmp_path / "accounts"
    assert main(["sim", "accounts", "--homes", str(HOMES), "--out", str(out)]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["hubs"] == HOMES
    assert (out / "credentials.json").stat().st_mode & 0o077 == 0
    passwords = json.loads((out / "credentials.json").read_text())
    assert (out / "passwd").read_text().count("\n") == HOMES
    centre = BrokerAccount.generate("centre", "centre")
    accounts = [BrokerAccount(hub, password, "hub") for hub, password in passwords.items()] + [centre]
    with Mosquitto(tmp_path / "mosquitto", accounts) as broker:
        yield broker, out / "credentials.json", centre


def test_fleet_sustains_its_rate_and_loses_nothing(fleet_broker: tuple[Mosquitto, Path, BrokerAccount],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker, credentials, centre = fleet_broker
    received: list[tuple[float, str, bytes]] = []
    lock = threading.Lock()

    def on_message(_client: Any, _userdata: Any, message: Any) -> None:
        with lock:
            received.append((time.monotonic(), message.topic, bytes(message.payload)))

    subscriber = mqtt_client(broker, centre, on_message=on_message)
    try:
        assert subscribe(subscriber, SUBSCRIPTION)[0].value == 1
        record = tmp_path / "fleet.jsonl"
        code = main(["sim", "fleet", "--homes", str(HOMES), "--days", "0.1", "--start", "2026-03-02",
                     "--rate", str(RATE), "--mqtt", f"{broker.host}:{broker.port}",
                     "--credentials", str(credentials), "--record", str(record)])
        assert code == 0
        summary = json.loads(capsys.readouterr().out)
        sent = record.read_bytes().splitlines()
        assert summary["messages"] == len(sent) >= 2000  # about 5 s at 500/s

        def all_arrived() -> bool:
            with lock:
                return len({p for _, _, p in received}) >= len(sent)

        wait_for(all_arrived, timeout=30, what="every message the fleet sent")
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()

    payloads = [p for _, _, p in received]
    assert set(payloads) == set(sent)  # nothing lost, nothing foreign
    hubs = {topic.split("/")[3] for _, topic, _ in received}
    assert len(hubs) == HOMES  # every virtual hub logged in as itself (the ACL allows nothing else)
    assert summary["rate"] >= 0.9 * RATE
    first, last = received[0][0], received[-1][0]
    assert (len(received) - 1) / (last - first) >= 0.9 * RATE
    assert summary["rate"] <= 1.1 * RATE  # paced, not flooded


def test_a_hub_with_a_wrong_password_is_a_clear_error(fleet_broker: tuple[Mosquitto, Path, BrokerAccount],
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker, credentials, _ = fleet_broker
    wrong = tmp_path / "wrong.json"
    passwords = json.loads(credentials.read_text())
    passwords["hub-002"] = "not-the-password"
    wrong.write_text(json.dumps(passwords))
    code = main(["sim", "fleet", "--homes", "3", "--days", "0.01", "--mqtt", f"{broker.host}:{broker.port}",
                 "--credentials", str(wrong)])
    assert code == 2
    err = capsys.readouterr().err
    assert "refused hub-002" in err and "Traceback" not in err
