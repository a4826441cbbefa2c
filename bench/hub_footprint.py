"""The hub agent's memory and CPU on a busy home, measured in its own process.

Starts a real Mosquitto, then runs, each in a subprocess of its own:
* the baseline: a bare Python with paho-mqtt connected to the broker (what any MQTT hub costs);
* the hub: a real `HubAgent` and `Uplink` (with its on-disk SQLite outbox) with 10 simulated devices for `--seconds`
  (default 60): a pulse oximeter sending a PLX continuous measurement every second, two
  pendants, three doors, two beds and two motion sensors, all keyed (AES-CCM), their frames
  made by firmware_stubs and fed through the agent's radio queue as the scanner would, each
  event frame repeated three times as the devices do (the hub drops the repeats).
Peak RSS is the child's own VmHWM (/proc/self/status); CPU is the child's user+system time over the
simulated period only (imports and start-up are reported apart). A centre subscriber counts
what reached the broker and acknowledges each message end to end, as the centre does, so the
hub's outbox empties as it would in a home. Target: `rss_mb` <= 50 on a Raspberry Pi class hub.
Prints a final JSON line.

    .venv/bin/python bench/hub_footprint.py [--seconds 60]
"""

import argparse
import contextlib
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HUB = "bench-hub"
RSS_TARGET_MB = 50
KEYS = {i: bytes.fromhex(f"{i:02x}" + secrets.token_hex(15)) for i in range(10)}


def _peak_rss_mb() -> float:
    """VmHWM, the process's own peak RSS. Not `ru_maxrss`: Linux carries the forking parent's
    peak across exec into it, which would charge the bench's own memory to the child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mb": _peak_rss_mb()}


def baseline_child(host: str, port: int, password: str, seconds: float) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline", protocol=mqtt.MQTTv5)
    client.username_pw_set(HUB, password)
    client.connect(host, port)
    client.loop_start()
    time.sleep(seconds)
    client.disconnect()
    client.loop_stop()
    print(json.dumps(_usage()))


def _motion_frame(mac: bytes, key: bytes, packet_id: int, counter: int, motion: bool) -> bytes:
    """firmware_stubs has no motion sensor yet: its primitives make the BTHome 0x21 frame."""
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    from firmware_stubs.bthome import MIC_LENGTH, BTHomeValues, device_info, encode_objects, nonce

    objects = encode_objects(BTHomeValues(packet_id=packet_id, battery_pct=80)) + bytes((0x21, int(motion)))
    info = device_info(encrypted=True, trigger_based=True)
    sealed = AESCCM(key, tag_length=MIC_LENGTH).encrypt(nonce(mac, info, counter), objects, None)
    return bytes((info,)) + sealed[:-MIC_LENGTH] + counter.to_bytes(4, "little") + sealed[-MIC_LENGTH:]


def hub_child(host: str, port: int, password: str, seconds: float, outbox: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from firmware_stubs import bed, door, oximeter, pendant
    from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
    from hub_agent.agent import HubAgent
    from hub_agent.devices import DeviceKind, PairedDevice
    from hub_agent.plx import CONTINUOUS_UUID
    from hub_agent.radio import Advertisement, GattNotification
    from hub_agent.uplink import Uplink

    kinds = [DeviceKind.OXIMETER, DeviceKind.PENDANT, DeviceKind.PENDANT, DeviceKind.DOOR, DeviceKind.DOOR,
             DeviceKind.DOOR, DeviceKind.BED, DeviceKind.BED, DeviceKind.MOTION, DeviceKind.MOTION]
    devices = [PairedDevice(f"{kind}-{i}", f"B0:00:00:00:00:{i:02X}", kind,
                            bindkey=None if kind is DeviceKind.OXIMETER else KEYS[i], expected_interval_s=600)
               for i, kind in enumerate(kinds)]
    started = _usage()

    async def simulate(agent: HubAgent) -> None:
        def put(address: str, frame: bytes, repeats: int = 3) -> None:
            for _ in range(repeats):
                agent.radio.put_nowait(Advertisement(address=address, service_data={BTHOME_SERVICE_UUID: frame},
                                                     rssi=-60, received_at=datetime.now(UTC),
                                                     monotonic=time.monotonic()))

        tx = {d.address: Transmitter(mac_bytes(d.address), key=d.bindkey) for d in devices}
        pendants = {d.address: pendant.Pendant(tx[d.address]) for d in devices if d.kind is DeviceKind.PENDANT}
        doors = {d.address: door.DoorSensor(tx[d.address]) for d in devices if d.kind is DeviceKind.DOOR}
        beds = {d.address: bed.BedSensor(tx[d.address]) for d in devices if d.kind is DeviceKind.BED}
        motion = {d.address: [0, 0] for d in devices if d.kind is DeviceKind.MOTION}
        oxi = devices[0].address
        for second in range(int(seconds)):
            agent.radio.put_nowait(GattNotification(
                address=oxi, characteristic=CONTINUOUS_UUID,
                data=oximeter.encode_continuous(oximeter.ContinuousMeasurement(spo2=95 + second % 4,
                                                                               pulse_rate=60 + second % 20)),
                received_at=datetime.now(UTC), monotonic=time.monotonic()))
            for n, address in enumerate(doors):
                if (second + n) % 5 == 0:
                    doors[address], frame = door.set_open(doors[address], not doors[address].is_open)
                    if frame:
                        put(address, frame)
            for n, address in enumerate(motion):
                if (second + n) % 3 == 0:
                    packet, counter = motion[address]
                    key = next(d.bindkey for d in devices if d.address == address)
                    assert key is not None
                    put(address, _motion_frame(mac_bytes(address), key, packet % 256, counter, second % 6 == n))
                    motion[address] = [packet + 1, counter + 1]
            for n, address in enumerate(beds):
                if (second + 7 * n) % 30 == 0:
                    beds[address], frame = bed.set_occupied(beds[address], not beds[address].occupied)
                    if frame:
                        put(address, frame)
            for n, address in enumerate(pendants):
                if (second + 11 * n) % 20 == 0:
                    pendants[address], frame = pendant.help_press(pendants[address], now=float(second))
                    put(address, frame)
                elif (second + n) % 10 == 0:
                    pendants[address], frame = pendant.status(pendants[address])
                    put(address, frame, repeats=1)
            await asyncio.sleep(1)

    async def main() -> dict[str, Any]:
        agent = HubAgent(HUB, devices, Uplink(hub_id=HUB, password=password, host=host, port=port,
                                              outbox_path=outbox), heartbeat_interval_s=10)
        running = asyncio.create_task(agent.run())
        await asyncio.sleep(0.5)
        steady = _usage()
        await simulate(agent)
        for _ in range(200):  # let the agent drain its queue (at most 10 s)
            if agent.radio.empty():
                break
            await asyncio.sleep(0.05)
        busy = _usage()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        return {"msgs": agent.sent, "cpu_s": busy["cpu_s"] - steady["cpu_s"],
                "startup_cpu_s": steady["cpu_s"] - started["cpu_s"], "rejected": dict(agent.rejected)}

    result = asyncio.run(main())
    print(json.dumps({**result, "maxrss_mb": _usage()["maxrss_mb"]}))


def run_child(mode: str, host: str, port: int, password: str, seconds: float, outbox: Path) -> dict[str, Any]:
    output = subprocess.run([sys.executable, __file__, "--child", mode, "--host", host, "--port", str(port),
                             "--password", password, "--seconds", str(seconds), "--outbox", str(outbox)],
                            capture_output=True, text=True, check=True, timeout=seconds + 120)
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--child", choices=("hub", "baseline"))
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--password")
    parser.add_argument("--outbox", type=Path)
    args = parser.parse_args()
    if args.child == "hub":
        hub_child(args.host, args.port, args.password, args.seconds, args.outbox)
        return
    if args.child == "baseline":
        baseline_child(args.host, args.port, args.password, min(args.seconds, 5.0))
        return

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from monitoring_centre.broker import BrokerAccount, Mosquitto
    from telecare_protocol import Ack, decode, encode
    from telecare_protocol.topics import ROOT, ack_topic

    hub_account = BrokerAccount(HUB, secrets.token_urlsafe(16), "hub")
    centre_account = BrokerAccount("centre", secrets.token_urlsafe(16), "centre")
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker", [hub_account, centre_account]) as broker:
        received = {"n": 0}
        lock = threading.Lock()

        def on_message(client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            if not message.topic.endswith("/status"):
                with lock:
                    received["n"] += 1
                decoded = decode(bytes(message.payload))
                client.publish(ack_topic(HUB), encode(Ack(hub_id=HUB, stored=(decoded.id,))), qos=1)

        centre = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-centre", protocol=mqtt.MQTTv5)
        centre.username_pw_set(centre_account.username, centre_account.password)
        centre.on_message = on_message
        centre.connect(broker.host, broker.port)
        centre.subscribe(f"{ROOT}/{HUB}/#", qos=1)
        centre.loop_start()
        outbox = Path(tmp) / "outbox.sqlite3"
        baseline = run_child("baseline", broker.host, broker.port, hub_account.password, args.seconds, outbox)
        hub = run_child("hub", broker.host, broker.port, hub_account.password, args.seconds, outbox)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and received["n"] < hub["msgs"]:
            time.sleep(0.05)
        centre.disconnect()
        centre.loop_stop()
    msgs = int(hub["msgs"])
    result = {
        "seconds": args.seconds, "devices": 10, "msgs": msgs, "delivered": received["n"],
        "rss_mb": round(hub["maxrss_mb"], 1), "baseline_rss_mb": round(baseline["maxrss_mb"], 1),
        "rss_vs_baseline": round(hub["maxrss_mb"] / baseline["maxrss_mb"], 2),
        "cpu_ms_per_1k_msgs": round(hub["cpu_s"] * 1000 / msgs * 1000, 1) if msgs else None,
        "cpu_pct_of_one_core": round(100 * hub["cpu_s"] / args.seconds, 2),
        "startup_cpu_ms": round(hub["startup_cpu_s"] * 1000, 1), "rejected": hub["rejected"],
        "rss_target_mb": RSS_TARGET_MB, "within_target": hub["maxrss_mb"] <= RSS_TARGET_MB,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
