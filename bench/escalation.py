"""Escalation under a burst: how fast the alerting pipeline gets N keyholders their mail.

N people on a keyholder-only service raise an alarm at the same moment (a storm takes a
village's power and pendants are pressed). The escalator snapshots N chains, writes N
notifications and sends them through a real SMTP server (aiosmtpd, loopback). Baseline,
in the same run: the same N messages sent straight with `channels.send`, one after the
other, with no database. Prints a final JSON line.

    .venv/bin/python bench/escalation.py [--alarms 200] [--database-url URL]
"""

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import free_port

from alerting.channels import Message, SmtpSettings, send
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator
from centre_app import schema
from detection.events import PENDANT_ALARM
from monitoring_centre import alerts
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import ContactPoint, PersonContact, Responder, make_engine, utc_now


class Counting:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"




def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    n = args.alarms
    mailbox = Counting()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = SmtpSettings(host="127.0.0.1", port=controller.port, starttls=False, mail_from="alerts@bench.invalid")
    try:
        # Baseline: the same number of messages, sent one by one, no database.
        started = time.perf_counter()
        for i in range(n):
            message = Message(subject=f"Help button pressed: person {i}", body="bench", priority=1,
                              reference=f"baseline-{i}")
            assert send(f"mailto:keyholder{i}@bench.invalid", message, smtp).ok
        baseline_s = time.perf_counter() - started

        with tempfile.TemporaryDirectory() as directory:
            engine = make_engine(args.database_url or f"sqlite:///{Path(directory) / 'centre.db'}")
            schema.upgrade(engine)
            sessions = sessionmaker(engine, expire_on_commit=False)
            now = utc_now()
            with sessions() as session:
                for i in range(n):
                    person = enrol_home(session, name=f"Person {i}", address="", hub_id=f"hub-{i}", devices=[])
                    person.service = "keyholder_only"
                    keyholder = Responder(name=f"Keyholder {i}", role="keyholder", active=True)
                    session.add(keyholder)
                    session.flush()
                    session.add(ContactPoint(responder_id=keyholder.id, address=f"mailto:keyholder{i}@bench.invalid",
                                             position=0))
                    session.add(PersonContact(person_id=person.id, responder_id=keyholder.id, position=0,
                                              nominated_at=now))
                session.commit()
            before = mailbox.count
            with sessions() as session:
                for i in range(n):
                    alerts.raise_alert(session, person_id=i + 1, hub_id=f"hub-{i}", rule=PENDANT_ALARM, subject="",
                                       at=utc_now(), evidence={}, why="bench")
                session.commit()
            escalator = Escalator(sessions, AlertingSettings(public_url="http://centre.invalid", smtp=smtp),
                                  AlertingMetrics(CollectorRegistry()))
            started = time.perf_counter()
            escalator.start_escalations(utc_now())
            escalator.step_escalations(utc_now())
            stepped_s = time.perf_counter() - started
            escalator.send_notifications(utc_now())
            pipeline_s = time.perf_counter() - started
            delivered = mailbox.count - before
            engine.dispose()
    finally:
        controller.stop()
    assert delivered == n, f"{delivered} of {n} delivered"
    result = {
        "alarms": n,
        "pipeline_s": round(pipeline_s, 3),
        "step_ms_per_alarm": round(stepped_s / n * 1000, 3),
        "baseline_serial_send_s": round(baseline_s, 3),
        "ratio_vs_baseline": round(pipeline_s / baseline_s, 2),
    }
    print(f"escalated and mailed {n} alarms in {pipeline_s:.2f} s; sending them alone took {baseline_s:.2f} s",
          file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
