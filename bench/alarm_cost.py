"""CPU per alarm, stage by stage, against the CPU of storing one reading.

A help-button press costs the centre more than a reading: it is stored, opens an alert, starts
an escalation (the chain snapshotted from the responder directory), steps it (notifications
written) and is written to the person's record (a FHIR Bundle). In a storm (a power cut takes a
village, pendants are pressed at once) that per-alarm cost is what the centre pays on top of the
stream of readings. This bench measures it, on the real centre's parts (`centre_app.centre.Centre`,
not started: no broker, no HTTP), in one thread, in CPU time of that thread.

Each round enrols `--alarms` new homes, each with two operators and a community nurse on the
directory and a keyholder of their own, and then times:
- the baseline, in the same run: one SpO2 reading per home, each stored as a batch of its own
  (`Ingest.process`, detection included), the ms of CPU per reading;
- `ingest`: one press per home, each a batch of its own, as a press arrives on the alarms lane;
- `start`, `step`, `record`: one pass each of the escalator's stages over all the new alerts
  (`start_escalations`, `step_escalations`, `write_records` without a record server: bundles kept).

Prints one JSON line: the median of `--rounds` rounds, ms of CPU per alarm by stage and in total,
the baseline, and `ratio`: an alarm's total CPU in readings' worth.

    .venv/bin/python bench/alarm_cost.py [--alarms 100] [--rounds 3] [--database-url URL] [--postgresql]
"""

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import add_database_options, centre_in_process

from centre_app.centre import Centre
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound
from monitoring_centre.storage import ContactPoint, PersonContact, Responder
from telecare_protocol.codec import encode
from telecare_protocol.codes import DeviceType, EventCode, Metric
from telecare_protocol.messages import DeviceEvent, Reading
from telecare_protocol.topics import topic_for

STAGES = ("ingest", "start", "step", "record")


def cpu_ms(work: Callable[[], object]) -> float:
    """CPU time of this thread spent in `work()`, in ms."""
    began = time.thread_time()
    work()
    return (time.thread_time() - began) * 1000


def enrol(centre: Centre, hubs: list[str], staff: bool) -> None:
    with centre.sessions() as session, session.begin():
        if staff:
            team = [Responder(name="Operator A", role="operator"), Responder(name="Operator B", role="operator"),
                    Responder(name="District nurses", role="nurse")]
            session.add_all(team)
            session.flush()
            for n, responder in enumerate(team):
                session.add(ContactPoint(responder_id=responder.id, address=f"mailto:staff{n}@centre.invalid",
                                         position=0))
        for hub in hubs:
            person = enrol_home(session, name=f"Person at {hub}", address="", hub_id=hub, devices=[
                DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("pendant-1", "pendant")])
            keyholder = Responder(name=f"Keyholder of {hub}", role="keyholder")
            session.add(keyholder)
            session.flush()
            session.add(ContactPoint(responder_id=keyholder.id, address=f"mailto:{hub}@home.invalid", position=0))
            session.add(PersonContact(person_id=person.id, responder_id=keyholder.id, position=0,
                                      nominated_at=datetime.now(UTC)))
    centre.detection.load()


def one_round(centre: Centre, first: int, alarms: int) -> dict[str, float]:
    hubs = [f"home-{n:05d}" for n in range(first, first + alarms)]
    enrol(centre, hubs, staff=first == 0)
    readings = [[Inbound(topic_for(hub, "reading"), encode(Reading(
        hub_id=hub, device_id="oximeter-1", metric=Metric.SPO2, value=96.0, unit="%",
        source_ts=datetime.now(UTC))))] for hub in hubs]
    presses = []
    for hub in hubs:
        press = DeviceEvent.new(hub_id=hub, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                                code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
        presses.append([Inbound(topic_for(hub, "event", press.code), encode(press), lane="alarm_topic")])
    ingest, escalator = centre.ingest, centre.escalator
    baseline = cpu_ms(lambda: [ingest.process(batch) for batch in readings])
    spent = {
        "ingest": cpu_ms(lambda: [ingest.process(batch) for batch in presses]),
        "start": cpu_ms(lambda: escalator.start_escalations(datetime.now(UTC))),
        "step": cpu_ms(lambda: escalator.step_escalations(datetime.now(UTC))),
        "record": cpu_ms(lambda: escalator.write_records(datetime.now(UTC))),
    }
    return {"baseline": baseline / alarms, **{stage: ms / alarms for stage, ms in spent.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--alarms", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    add_database_options(parser)
    args = parser.parse_args()
    with centre_in_process(args) as (centre, database):
        results = [one_round(centre, n * args.alarms, args.alarms) for n in range(args.rounds)]
    per_alarm = {stage: round(statistics.median(r[stage] for r in results), 3) for stage in STAGES}
    total = round(sum(per_alarm.values()), 3)
    baseline = round(statistics.median(r["baseline"] for r in results), 3)
    print(json.dumps({
        "database": database, "alarms": args.alarms, "rounds": args.rounds, "ms_cpu_per_alarm": per_alarm,
        "ms_cpu_per_alarm_total": total, "baseline_ms_cpu_per_reading": baseline,
        "ratio": round(total / baseline, 1) if baseline else None}))


if __name__ == "__main__":
    main()
