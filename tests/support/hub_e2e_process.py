"""A real hub agent in a process of its own, for the end-to-end acknowledgement tests.

A `HubAgent` with a real `Uplink` (on-disk outbox) hears a pendant, a door sensor and a pulse
oximeter through its radio queue, as the BLE scanner would feed it (BTHome frames and PLX
notifications made by `firmware_stubs`): every `--period` seconds one event (a help-button
press every fifth tick, a door opening or closing otherwise) and one oximeter measurement (an
SpO2 and a pulse reading). The test steers it with files in `--control`:

- `burst`: send `--burst` help-button presses at once, then journal `burst_published` (with the ids
  committed meanwhile) when the broker has PUBACKed all of them: the moment the transport says
  they are safe;
- `stop`: stop the stream, wait up to `--deliver-timeout` s for the centre to acknowledge
  everything, journal `done` and exit (0 if everything was acknowledged).

Everything the test counts goes to the `--journal` (JSON lines, flushed per line):
`{"committed": id, "type": t, "code": c}` once the outbox has the message,
`{"acked": [ids], "refused": [[id, reason]]}` per confirmation from the centre, and
`{"notice": signal, "id": id}` per alarm signal ("received" is what a pendant LED would show).

    HUB_PASSWORD=... python -m tests.support.hub_e2e_process --hub-id hub-1 --host H --port P \\
        --outbox DIR/outbox.db --journal DIR/journal.jsonl --control DIR/control
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from firmware_stubs import door, oximeter, pendant
from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
from hub_agent.agent import HubAgent
from hub_agent.confirmation import AlarmNotice
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.plx import CONTINUOUS_UUID
from hub_agent.radio import Advertisement, GattNotification
from hub_agent.uplink import Confirmation, Uplink
from telecare_protocol import Message

PENDANT = PairedDevice("pendant-1", "B0:00:00:00:01:01", DeviceKind.PENDANT)
DOOR = PairedDevice("door-1", "B0:00:00:00:01:02", DeviceKind.DOOR)
OXIMETER = PairedDevice("oximeter-1", "B0:00:00:00:01:03", DeviceKind.OXIMETER)
DEVICES = (PENDANT, DOOR, OXIMETER)


class Journal:
    """Append-only JSON lines, one write and flush per record, from any thread."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class JournallingUplink(Uplink):
    """The real uplink; each message is journalled once `send` has committed it."""

    journal: Journal
    committed: list[str]

    def send(self, message: Message) -> None:
        super().send(message)
        code = message.code.value if message.type == "event" else None
        self.committed.append(str(message.id))
        self.journal.write({"committed": str(message.id), "type": message.type, "code": code})


class Home:
    """The devices' firmware state: each call makes the next radio frame."""

    def __init__(self) -> None:
        self.pendant = pendant.Pendant(Transmitter(mac_bytes(PENDANT.address)))
        self.door = door.DoorSensor(Transmitter(mac_bytes(DOOR.address)))
        self.presses = 0

    def press(self) -> Advertisement:
        self.presses += 1
        self.pendant, frame = pendant.help_press(self.pendant, now=float(self.presses))
        return advertisement(PENDANT.address, frame)

    def door_moves(self) -> Advertisement:
        self.door, frame = door.set_open(self.door, not self.door.is_open)
        assert frame is not None
        return advertisement(DOOR.address, frame)

    def measurement(self, n: int) -> GattNotification:
        data = oximeter.encode_continuous(oximeter.ContinuousMeasurement(spo2=95 + n % 4, pulse_rate=64 + n % 9))
        return GattNotification(address=OXIMETER.address, characteristic=CONTINUOUS_UUID, data=data,
                                received_at=datetime.now(UTC), monotonic=time.monotonic())


def advertisement(address: str, frame: bytes) -> Advertisement:
    return Advertisement(address=address, service_data={BTHOME_SERVICE_UUID: frame}, rssi=-60,
                         received_at=datetime.now(UTC), monotonic=time.monotonic())


async def run(args: argparse.Namespace, journal: Journal) -> bool:
    uplink = JournallingUplink(hub_id=args.hub_id, password=os.environ["HUB_PASSWORD"], host=args.host,
                               port=args.port, outbox_path=args.outbox, reconnect_max_delay_s=1)
    uplink.journal = journal
    uplink.committed = []

    def confirmed(confirmation: Confirmation) -> None:
        journal.write({"acked": list(confirmation.stored), "refused": [list(r) for r in confirmation.refused]})

    def notice(alarm_notice: AlarmNotice) -> None:
        journal.write({"notice": alarm_notice.signal.value, "id": str(alarm_notice.alarm.id),
                       "after_s": round(alarm_notice.after_s, 3)})

    uplink.add_listener(confirmed)
    agent = HubAgent(args.hub_id, DEVICES, uplink, heartbeat_interval_s=args.heartbeat, on_alarm=notice)
    running = asyncio.create_task(agent.run(power_poll_s=3600))
    home = Home()
    control = args.control
    started = time.monotonic()
    tick = 0
    while not (control / "stop").exists():
        agent.radio.put_nowait(home.press() if tick % 5 == 0 else home.door_moves())
        agent.radio.put_nowait(home.measurement(tick))
        tick += 1
        if (control / "burst").exists():
            (control / "burst").unlink()
            before = len(uplink.committed)
            for _ in range(args.burst):
                agent.radio.put_nowait(home.press())
            while not (agent.radio.empty() and uplink.outbox.pending() == 0 and uplink.on_the_wire == 0):  # noqa: ASYNC110
                await asyncio.sleep(0.005)  # the uplink's state changes on its own threads: polled
            journal.write({"burst_published": args.burst, "ids": uplink.committed[before:]})
        await asyncio.sleep(max(0.0, started + tick * args.period - time.monotonic()))
    deadline = time.monotonic() + args.deliver_timeout
    while not (agent.radio.empty() and uplink.unacked == 0) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    delivered = uplink.unacked == 0
    journal.write({"done": delivered, "unacked": uplink.unacked, "resent": uplink.resent,
                   "refused": dict(uplink.centre_refused)})
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    return delivered


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub-id", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--period", type=float, default=0.2, help="seconds between events")
    parser.add_argument("--burst", type=int, default=40, help="presses in a burst")
    parser.add_argument("--heartbeat", type=int, default=5, help="heartbeat interval, s")
    parser.add_argument("--deliver-timeout", type=float, default=90.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    journal = Journal(args.journal)
    try:
        return 0 if asyncio.run(run(args, journal)) else 1
    finally:
        journal.close()


if __name__ == "__main__":
    raise SystemExit(main())
