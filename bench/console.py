"""The operator's alarm queue in a real Chromium: how long `/operator` takes to load (to the
queue drawn and the live stream connected), and how long a press takes to reach an open queue.

Starts a real Mosquitto and a centre (SQLite), signs an operator in, then:
- loads `/operator` `--loads` times (20), the clock stopping when the page says "Live";
- presses the help button `--presses` times (100): each press is the hub's MQTT message
  published to the centre, and the clock stops when the row is on the open page (Playwright's
  locator, which adds its own few milliseconds of polling); the alarm is then resolved through
  the API and the row waited away, so each press is a new alarm, not a repeat.
Baseline, in the same run: `GET /api/v1/alerts?status=active` (the operator's bearer token),
`--presses` times. Prints the figures, then one JSON line with the ratios.

    .venv/bin/python bench/console.py [--presses 100] [--loads 20]
"""

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import free_port, percentiles

from centre_app.auth import create_user
from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from monitoring_centre.broker import BrokerAccount, Mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for

HUB = "bench-hub"
PENDANT = "pendant-1"
OPERATOR = "bench-operator"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 20_000


def hub_client(broker: Mosquitto, account: BrokerAccount) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-console-hub", protocol=mqtt.MQTTv5)
    client.username_pw_set(account.username, account.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def press(client: mqtt.Client) -> None:
    event = DeviceEvent.new(hub_id=HUB, device_id=PENDANT, device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
    client.publish(topic_for(HUB, "event"), encode(event), qos=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed (make setup-test installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        accounts = [BrokerAccount(HUB, secrets.token_urlsafe(16), "hub"),
                    BrokerAccount("centre", secrets.token_urlsafe(16), "centre")]
        with Mosquitto(Path(tmp) / "broker", accounts) as broker:
            settings = CentreSettings(
                database_url=f"sqlite:///{tmp}/centre.db", jwt_secret=secrets.token_urlsafe(48),
                mqtt_host=broker.host, mqtt_port=broker.port, mqtt_password=accounts[1].password,
                http_port=free_port())
            centre = Centre(settings)
            password = secrets.token_urlsafe(16)
            with centre.sessions() as session, session.begin():
                enrol_home(session, name="Bench Person", address="", hub_id=HUB,
                           devices=[DeviceRecord(PENDANT, "pendant")])
                create_user(session, OPERATOR, password, "operator")
            with CentreThread(centre), sync_playwright() as playwright:
                api = httpx.Client(base_url=centre.url, timeout=30)
                token = api.post("/api/v1/auth/token", data={"username": OPERATOR, "password": password})
                api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
                baseline = []
                for _ in range(args.presses):
                    start = time.perf_counter()
                    api.get("/api/v1/alerts", params={"status": "active"}).raise_for_status()
                    baseline.append((time.perf_counter() - start) * 1000)

                browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"{centre.url}/signin")
                page.fill("#username", OPERATOR)
                page.fill("#password", password)
                page.click("button[type=submit]")
                page.wait_for_url(f"{centre.url}/operator", timeout=WAIT_MS)
                loads = []
                for _ in range(args.loads):
                    start = time.perf_counter()
                    page.goto(f"{centre.url}/operator")
                    page.locator("#link.op-link--up").wait_for(timeout=WAIT_MS)
                    loads.append((time.perf_counter() - start) * 1000)

                hub = hub_client(broker, accounts[0])
                row = page.locator("#queue tbody tr[data-rules~=pendant_alarm]")
                samples = []
                for _ in range(args.presses):
                    start = time.perf_counter()
                    press(hub)
                    row.wait_for(timeout=WAIT_MS)
                    samples.append((time.perf_counter() - start) * 1000)
                    for alert in api.get("/api/v1/alerts", params={"status": "active"}).json():
                        api.post(f"/api/v1/alerts/{alert['id']}/resolve",
                                 json={"outcome": "false_alarm"}).raise_for_status()
                    expect(row).to_have_count(0, timeout=WAIT_MS)
                hub.disconnect()
                hub.loop_stop()
                browser.close()
    load = percentiles(loads)
    path = percentiles(samples)
    base = percentiles(baseline)
    print(f"/operator load       ms: {load}")
    print(f"press → row on page  ms: {path}")
    print(f"GET /api/v1/alerts   ms: {base}")
    print(json.dumps({"loads": len(loads), "presses": len(samples),
                      "page_load_ms_p50": load["p50"], "page_load_ms_p99": load["p99"],
                      "press_to_row_ms_p50": path["p50"], "press_to_row_ms_p99": path["p99"],
                      "get_alerts_ms_p50": base["p50"],
                      "ratio_page_load_p50_vs_get_alerts": round(load["p50"] / base["p50"], 2),
                      "ratio_press_to_row_p50_vs_get_alerts": round(path["p50"] / base["p50"], 2)}))


if __name__ == "__main__":
    main()
