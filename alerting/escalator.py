"""The alerting pipeline, every second (or as soon as an alert changes):

1. start an escalation for every open alert that has none (`escalation.start`);
2. step every escalation that is due, or whose alert has changed (`escalation.advance`);
3. send every notification that is due (`notify`, through `channels.send`);
4. write the patient record for every alert state not yet written (`patient_record`).

Each stage reads what it needs from the database and writes its result back, so the
pipeline can stop anywhere (a crash, a restart) and pick up again. Stages 1-2 touch only
the database; 3 and 4 wait on other servers, so each runs on a thread of its own and a
slow mail or record server never delays the next step of an escalation.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from alerting import channels, escalation, notify, patient_record
from alerting.acceptance import accept_token, link_key
from alerting.channels import NotifySettings, SmtpSettings
from alerting.channels.targets import NO_INTERNAL_TARGETS, InternalTargets
from alerting.notify import NotificationStatus
from alerting.tables import Escalation, Notification
from monitoring_centre import audit
from monitoring_centre.alerts import ACTIVE, AlertState
from monitoring_centre.periodic import PeriodicWorker
from monitoring_centre.storage import Alert, Person, begin_read, one_worker_at_a_time, utc_now

log = logging.getLogger(__name__)
SENDERS = 8
"""Notifications sent at the same time, each on its own connection."""
BATCH = 100
"""Notifications claimed from the database at a time."""


@dataclass(frozen=True)
class AlertingSettings:
    public_url: str
    """Where responders reach the centre, for accept links (signed with the centre's own key,
    `acceptance.link_key`, kept in its database)."""
    worker: str = "centre"
    """This worker's stable name, the same at every start and never the same as another live
    worker's on the database (the centre uses its MQTT client id, which the broker already
    keeps unique): its send leases carry it, so after a restart it takes back its own dead
    run's leases at once and never another worker's (`notify.reclaim`)."""
    internal_targets: InternalTargets = NO_INTERNAL_TARGETS
    """Private, loopback or link-local hosts messages may go to anyway (`channels.targets`); none by default."""
    smtp: SmtpSettings | None = None
    notify: NotifySettings | None = None
    """GOV.UK Notify, for `sms:` contact points (and for e-mail when it has an e-mail template)."""
    fhir_base_url: str | None = None
    timezone: str = "Europe/London"
    centre_phone: str | None = None
    """The centre's phone number, given to keyholders in the e-mail (`texts.mail_body`)."""
    poll_s: float = 1.0
    allow_test_nhs_numbers: bool = False
    """Let NHS numbers from the synthetic test range into the patient record (demo, tests)."""


def may_need_attention(session: Session, now: datetime) -> list[tuple[Escalation, Alert]]:
    """`escalation.unfinished`, narrowed in SQL to those `escalation.needs_attention` may say yes to at `now`
    (UTC): a step is due, or the alert is no longer open (accepted, acknowledged, resolved). A superset of
    what needs attention, in the same order (priority, then escalation id); an open alert whose next step
    is not due yet is left in the database. A pass runs every second and after every commit that changes an
    alert; loading every running chain with its JSON snapshot made it cost about 0.1 ms per open alert
    (SQLite, 100 open alerts, none due: 12 ms a pass, about 2 ms narrowed)."""
    rows = session.execute(
        select(Escalation, Alert).join(Alert, Alert.id == Escalation.alert_id)
        .where(Escalation.state.in_(escalation.UNFINISHED),
               or_(Alert.status != AlertState.OPEN, Escalation.due_at <= now))
        .order_by(Alert.priority, Escalation.id)
    )
    return [(chain, alert) for chain, alert in rows]


class AlertingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter("telecare_notifications", "Notification attempts, by outcome", ["outcome"],
                                     registry=registry)
        self.records = Counter("telecare_record_writes", "Patient-record writes, by outcome", ["outcome"],
                               registry=registry)
        self.errors = Counter("telecare_alerting_errors", "Alerting passes that failed and were retried",
                              registry=registry)


class Escalator:
    """Alertmanager-style pipeline for every alert: start its chain, step it, send, write the record.

    `sessions`: the centre's database sessions (every stage reads and writes there, so a restart
    resumes). `settings`: public URL for accept links, this worker's name for send leases, SMTP,
    GOV.UK Notify and Apprise channels, the FHIR record server, `poll_s` (seconds between passes). `metrics`: counters
    on the centre's registry. `clock`: UTC now (tests drive it). `on_change`: told the ids of alerts
    whose escalation moved (thread-safe consumers only).

    Threads: `start()` runs three `PeriodicWorker`s ("escalator", "notifier", "record-writer");
    `wake()` (any thread) runs them now; `stop()` (any thread) waits up to 30 s for each;
    `run_once()` runs every stage on the caller's thread, for tests.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: AlertingSettings, metrics: AlertingMetrics,
                 clock: Callable[[], datetime] = utc_now,
                 on_change: Callable[[set[int]], None] | None = None) -> None:
        self.sessions = sessions
        self.on_change = on_change
        """Told the ids of alerts whose escalation moved, so open consoles refresh."""
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.last_pass_at: datetime | None = None
        """When the stepping loop last finished a pass without error (UTC, wall clock, not `clock`);
        None before the first. `/health` reports it."""
        self.lease_owner = notify.lease_owner(settings.worker)
        """This run's name on the send leases it takes: "{worker}#{run}"."""
        self._reclaimed = False
        self._link_key: str | None = None
        loops = {"escalator": self._step, "notifier": self._send, "record-writer": self._write}
        self._workers = {name: PeriodicWorker(name, work, settings.poll_s, run_at_start=True,
                                              on_error=metrics.errors.inc, logger=log)
                         for name, work in loops.items()}

    # The loops ---------------------------------------------------------------------
    # Three threads (`PeriodicWorker`s named "escalator", "notifier", "record-writer"), so that
    # a slow mail or record server never holds up the next step of an escalation: stepping
    # touches only the database; sending and record writing wait on the network, each in its
    # own loop. Each runs at start, then every `settings.poll_s` seconds or as soon as woken;
    # a failed pass (a database or network hiccup) is logged, counted in
    # `telecare_alerting_errors` and retried at the next pass: it never ends alerting.

    def start(self) -> None:
        """Start the three loops (once)."""
        for worker in self._workers.values():
            worker.start()

    def stop(self) -> None:
        """Ask all three loops to stop, then wait up to 30 s for each (a send in progress finishes)."""
        for worker in self._workers.values():
            worker.request_stop()
        for worker in self._workers.values():
            worker.join(timeout=30)

    def wake(self) -> None:
        """Run every loop now (thread-safe): ingest and the API call this when alerts change."""
        for worker in self._workers.values():
            worker.wake()

    def _step(self) -> None:
        now = self.clock()
        self.start_escalations(now)
        if self.step_escalations(now):  # something to send or record: no need to wait for their poll
            self._workers["notifier"].wake()
            self._workers["record-writer"].wake()
        self.last_pass_at = utc_now()

    def _send(self) -> None:
        self.send_notifications(self.clock())

    def _write(self) -> None:
        self.write_records(self.clock())

    def run_once(self) -> None:
        """Every stage once, in order, on this thread (tests drive the clock this way)."""
        now = self.clock()
        self.start_escalations(now)
        self.step_escalations(now)
        self.send_notifications(self.clock())
        self.write_records(self.clock())

    # The stages ----------------------------------------------------------------------

    def start_escalations(self, now: datetime) -> set[int]:
        """Returns the ids of alerts whose escalation started."""
        with self.sessions() as session, one_worker_at_a_time(session, "start_escalations") as mine:
            if not mine:  # another worker is starting them now (several workers: docs/operating.md)
                return set()
            # Read and snapshot first, write after: on SQLite the write lock the alarm path waits for is
            # held only to insert the chains (and not at all by a pass with nothing to start).
            begin_read(session)
            have_one = select(Escalation.alert_id)
            alerts = session.scalars(select(Alert).where(Alert.status.in_(ACTIVE), Alert.id.not_in(have_one))).all()
            directory = escalation.Directory(session)  # responders read once for the pass, not per alert
            chains = [escalation.snapshot_of(session, alert, now, directory) for alert in alerts]
            session.commit()
            if not chains:
                return set()
            started_meanwhile = set(session.scalars(select(Escalation.alert_id).where(
                Escalation.alert_id.in_([chain.alert_id for chain in chains]))))  # by `escalation.start` elsewhere
            chains = [chain for chain in chains if chain.alert_id not in started_meanwhile]
            session.add_all(chains)
            session.commit()
        started = {chain.alert_id for chain in chains}
        self._changed(started)
        return started

    def step_escalations(self, now: datetime) -> set[int]:
        """Returns the ids of alerts whose escalation moved."""
        moved: set[int] = set()
        key = self._accept_link_key()
        with self.sessions() as session:
            begin_read(session)  # an idle pass (every second) takes no write lock on SQLite
            anything_due = any(escalation.needs_attention(chain, alert, now)
                               for chain, alert in may_need_attention(session, now))
            session.commit()
            if not anything_due:
                return moved
            for chain, alert in may_need_attention(session, now):
                if escalation.needs_attention(chain, alert, now) and escalation.claim(session, chain):
                    state = chain.state
                    if escalation.advance(session, chain, alert, now,
                                          accept_token=lambda reference: accept_token(key, reference)) \
                            or chain.state != state:
                        moved.add(alert.id)
            session.commit()
        self._changed(moved)
        return moved

    def _changed(self, alert_ids: set[int]) -> None:
        if alert_ids and self.on_change is not None:
            self.on_change(alert_ids)

    def send_notifications(self, now: datetime) -> None:
        """Send what is due, several at once: one unreachable server never holds up the rest.
        Each batch is claimed in one transaction and recorded in one, and a burst is sent
        batch after batch until nothing is due, not one batch per poll. The first pass of a
        run first takes back the sends its worker's earlier run left leased (`reclaim_interrupted`)."""
        if not self._reclaimed:
            self.reclaim_interrupted(now)
        with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="send") as pool:
            while True:
                claimed, outgoing = self._claim(now)
                deliveries = list(pool.map(
                    lambda out: channels.send(out.address, out.message, self.settings.smtp,
                                              internal=self.settings.internal_targets,
                                              notify=self.settings.notify), outgoing))
                self._record(list(zip(outgoing, deliveries, strict=True)))
                if claimed < BATCH:
                    return

    def reclaim_interrupted(self, now: datetime) -> list[int]:
        """Make the sends an earlier run of this worker left leased (it crashed mid-send) due
        now, rather than when their lease runs out; once per run. Returns their ids."""
        with self.sessions() as session:
            taken_back = notify.reclaim(session, self.lease_owner, now)
            session.commit()
        self._reclaimed = True
        if taken_back:
            log.warning("took back %d send(s) a previous run of %s left unfinished: sending them now",
                        len(taken_back), self.settings.worker)
        return taken_back

    def _claim(self, now: datetime) -> tuple[int, list[notify.Outgoing]]:
        """Lease up to a batch of due notifications and compose them. Returns how many were
        due, and those still worth sending (a message whose alert was handled is cancelled)."""
        outgoing = []
        key = self._accept_link_key()
        with self.sessions() as session:
            due = notify.due(session, now, limit=BATCH)
            for notification_id in due:
                notification = notify.claim(session, notification_id, now, self.lease_owner)
                if notification is None:
                    continue
                alert = session.get(Alert, notification.alert_id)
                person = session.get(Person, alert.person_id) if alert is not None else None
                if alert is None or person is None:
                    notification.status = NotificationStatus.FAILED
                    notification.detail, notification.lease_owner = "its alert or person no longer exists", None
                    continue
                reason = notify.unwanted(notification, alert)
                if reason is not None:
                    notification.status = NotificationStatus.CANCELLED
                    notification.detail, notification.next_attempt_at, notification.lease_owner = reason, None, None
                    self.metrics.notifications.labels(outcome=NotificationStatus.CANCELLED).inc()
                    continue
                accept_url = None
                if notification.accept_token_hash is not None:
                    token, token_hash = accept_token(key, notification.reference)
                    if token_hash != notification.accept_token_hash:
                        # written under another key (before the centre had a key of its own): the
                        # link this message carries is the one that works from now on
                        notification.accept_token_hash = token_hash
                    accept_url = f"{self.settings.public_url.rstrip('/')}/accept/{token}"
                message = notify.compose(notification, alert, person, accept_url=accept_url,
                                         timezone=self.settings.timezone,
                                         centre_phone=self.settings.centre_phone)
                outgoing.append(notify.Outgoing(notification_id, alert.id, alert.person_id, notification.address,
                                                message))
            session.commit()
        return len(due), outgoing

    def _record(self, results: list[tuple[notify.Outgoing, channels.Delivery]]) -> None:
        """Each attempt's outcome, and an audit row for each message that went out."""
        if not results:
            return
        with self.sessions() as session:
            for out, delivery in results:
                notification = session.get(Notification, out.notification_id)
                if notification is None:
                    continue
                notify.record(notification, delivery, self.clock())
                outcome = NotificationStatus.SENT if delivery.ok else notification.status  # pending or failed
                retry = outcome == NotificationStatus.PENDING  # it will be tried again
                self.metrics.notifications.labels(outcome="retry" if retry else outcome).inc()
                if delivery.ok:
                    audit.record(session, "system:alerting", "notify_responder", [out.person_id],
                                 f"alert {out.alert_id} to {notification.responder_name} "
                                 f"({delivery.channel}): {notification.reason}")
            session.commit()
        self._changed({out.alert_id for out, _ in results})

    def write_records(self, now: datetime) -> None:
        """Build the record's Bundles for new alert states and send the due ones: one worker at a time
        (with several workers, another's pass is skipped), so no state is built or sent twice."""
        with self.sessions() as session, one_worker_at_a_time(session, "write_records") as mine:
            if not mine:
                return
            begin_read(session)  # built while reading: on SQLite the alarm path's write lock is not held meanwhile
            planned = patient_record.plan(session, now, send=self.settings.fhir_base_url is not None,
                                          allow_test_nhs_numbers=self.settings.allow_test_nhs_numbers)
            session.commit()
            if planned.new or planned.moved_on:
                patient_record.keep(session, planned)
                session.commit()
            if self.settings.fhir_base_url is None:
                return
            for outcome in patient_record.send_due(self.sessions, self.settings.fhir_base_url, now):
                self.metrics.records.labels(outcome=outcome).inc()

    def _accept_link_key(self) -> str:
        """The centre's accept-link key: read (or made, and committed) once per run, in a
        transaction of its own, before a pass opens its own (on SQLite a second writer would wait)."""
        if self._link_key is None:
            with self.sessions() as session:
                key = link_key(session)
                session.commit()
            self._link_key = key
        return self._link_key
