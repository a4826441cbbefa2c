"""The patient record: FHIR R4 resources built from plain facts about a person, an alert
and what was done about it.

Pure: no database and no network. Every resource is a `fhir.resources` model, so it is
validated as it is built. The models come from the library's R4B package; for the
resources used here (Patient, Observation, Flag, DetectedIssue, Communication, Bundle)
R4B is identical on the wire to FHIR R4 (4.0.1).

Resource ids are derived from our own row ids ("person-7", "alert-12"), and the bundle
writes each resource with PUT to that id, so writing the same record twice updates it and
never duplicates it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.address import Address
from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.communication import Communication, CommunicationPayload
from fhir.resources.R4B.detectedissue import DetectedIssue, DetectedIssueMitigation
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from detection.rules import CATALOGUE, RuleKind
from monitoring_centre.alerts import ACTIVE, ENDED
from monitoring_centre.nhs_number import NHS_NUMBER_SYSTEM, normalise
from telecare_protocol.codes import NO_VALUE_REASONS, Metric, Priority, QualityFlag

ALERT_RULE_SYSTEM = "urn:telecare:alert-rule"
"""Our code system for alert rules: the code is the rule name ("fall", "battery_low")."""
DEVICE_SYSTEM = "urn:telecare:device"
"""Our identifier system for devices: the value is the device id the hub reports."""

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:iso:std:iso:11073:10101"
"""ISO/IEEE 11073-10101 nomenclature, the codes personal health devices send."""
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"

# UK Core (NHS England's R4 profiles, https://fhir.hl7.org.uk): the profiles each resource claims,
# and the NHS number's verification status.
UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/"
UK_CORE_PATIENT = UK_CORE + "UKCore-Patient"
UK_CORE_OXYGEN_SATURATION = UK_CORE + "UKCore-Observation-VitalSigns-OxygenSaturation"
UK_CORE_HEART_RATE = UK_CORE + "UKCore-Observation-VitalSigns-HeartRate"
NHS_NUMBER_VERIFICATION = UK_CORE + "Extension-UKCore-NHSNumberVerificationStatus"
NHS_NUMBER_VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
NOT_TRACED = ("02", "Number present but not traced")
"""The centre checks an NHS number's form, check digit and range at enrolment (`nhs_number`), but
never traces it on the Personal Demographics Service: "present but not traced" (UK Core's
NHSNumberVerificationStatusEngland code 02), never "01 present and verified"."""
FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/flag-priority-code"

ACTIVE_ALERT_STATUSES = frozenset(ACTIVE)
ENDED_ALERT_STATUSES = frozenset(ENDED)
NOTIFICATION_STATUSES = frozenset({"sent", "failed"})


@dataclass(frozen=True)
class PersonFacts:
    id: int
    name: str
    nhs_number: str | None
    address: str = ""
    allow_test_nhs_number: bool = False
    """Accept an NHS number from the synthetic test range (the centre's `allow_test_nhs_numbers`:
    the demo and tests). Off, such a number is refused here as it is at enrolment."""


@dataclass(frozen=True)
class ReadingFacts:
    id: int
    person_id: int
    device_id: str
    metric: str
    value: float | None
    unit: str
    quality: tuple[str, ...]
    source_ts: datetime


@dataclass(frozen=True)
class AlertFacts:
    id: int
    person_id: int
    rule: str
    title: str
    priority: int
    status: str
    outcome: str | None
    opened_at: datetime
    last_seen_at: datetime
    explanation: dict[str, Any]
    ended_at: datetime | None = None


@dataclass(frozen=True)
class NotificationFacts:
    id: int
    alert_id: int
    person_id: int
    responder_name: str
    responder_role: str
    channel: str
    status: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class _VitalSign:
    codings: tuple[tuple[str, str, str], ...]
    """(system, code, display) for each coding."""
    text: str
    unit: str
    """Both the display unit and its UCUM code."""
    profile: str
    """The UK Core profile its Observation claims (`meta.profile`)."""


# Codes from the domain brief ("Patient record") and the FHIR R4 vital-signs profiles
# (oxygen saturation: 2708-6, with 59408-5 for pulse oximetry; heart rate: 8867-4). The
# MDC codes are ISO/IEEE 11073-10101, as the HL7 Personal Health Device IG and US Core's
# pulse-oximetry example use them: 150456 MDC_PULS_OXIM_SAT_O2 (partition 2, term 19384)
# and 149530 MDC_PULS_OXIM_PULS_RATE (partition 2, term 18458).
VITAL_SIGNS: dict[Metric, _VitalSign] = {
    Metric.SPO2: _VitalSign(
        (
            (LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
            (LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            (MDC, "150456", "MDC_PULS_OXIM_SAT_O2"),
        ),
        "Oxygen saturation (pulse oximetry)",
        "%",
        UK_CORE_OXYGEN_SATURATION,
    ),
    Metric.PULSE_RATE: _VitalSign(
        (
            (LOINC, "8867-4", "Heart rate"),
            (MDC, "149530", "MDC_PULS_OXIM_PULS_RATE"),
        ),
        "Pulse rate (pulse oximetry)",
        "/min",
        UK_CORE_HEART_RATE,
    ),
}
"""Metrics with an agreed code. Perfusion index has none (no LOINC code is agreed for it),
so it is not written to the record: `observation` returns None for it."""

PRELIMINARY_FLAGS = frozenset(
    {QualityFlag.QUESTIONABLE, QualityFlag.LOW_PERFUSION, QualityFlag.EARLY_ESTIMATE, QualityFlag.MEASUREMENT_ONGOING}
)
"""A value with any of these is not yet one to rely on, so its Observation is preliminary."""

# Why a reading has no value, as a data-absent-reason code, most specific first:
# - sensor_off: the probe was off the finger, so no measurement took place ("not-performed");
# - invalid: the device measured but reports its own result as invalid, a device error ("error");
# - data_unavailable: a value should exist but the device did not give one ("unknown").
ABSENT_REASONS: tuple[tuple[QualityFlag, str, str], ...] = (
    (QualityFlag.SENSOR_OFF, "not-performed", "Not Performed"),
    (QualityFlag.INVALID, "error", "Error"),
    (QualityFlag.DATA_UNAVAILABLE, "unknown", "Unknown"),
)

TECHNICAL_RULES = frozenset(rule.rule for rule in CATALOGUE.values() if rule.kind is RuleKind.SUPERVISION)
"""Alerts about the monitoring equipment, not the person's condition. Their Flag category is
"safety" (a precaution: the person may not be protected); every other alert is "clinical"."""

_RESPONDER_ROLE_LABEL = {"emergency_services": "emergency services"}


def patient(p: PersonFacts) -> Patient:
    """The person, as UK Core's Patient: the NHS number (if any) under `NHS_NUMBER_SYSTEM` with
    its verification status (`NOT_TRACED`). A stored NHS number that fails the enrolment check
    (`nhs_number.normalise`: check digit, placeholder, issued range, test range only when
    allowed) raises InvalidNhsNumber: a wrong identifier would attach this record to someone else."""
    identifiers = None
    if p.nhs_number is not None and p.nhs_number.strip():
        number = normalise(p.nhs_number, allow_test_numbers=p.allow_test_nhs_number)
        code, display = NOT_TRACED
        verification = Extension(url=NHS_NUMBER_VERIFICATION, valueCodeableConcept=CodeableConcept(
            coding=[Coding(system=NHS_NUMBER_VERIFICATION_SYSTEM, code=code, display=display)]))
        identifiers = [Identifier(extension=[verification], system=NHS_NUMBER_SYSTEM, value=number)]
    return Patient(
        id=f"person-{p.id}",
        meta=Meta(profile=[UK_CORE_PATIENT]),
        identifier=identifiers,
        name=[HumanName(text=p.name.strip())] if p.name.strip() else None,
        address=[Address(text=p.address.strip())] if p.address.strip() else None,
    )


def observation(r: ReadingFacts) -> Observation | None:
    """A vital-sign reading as UK Core's vital-signs Observation (`meta.profile` its UK Core
    profile, category vital-signs, UCUM unit), or None for a metric with no agreed code
    (perfusion index). A reading the device flagged is marked, never dropped: status
    "preliminary" for a value not yet to rely on (`PRELIMINARY_FLAGS`), no value and a
    dataAbsentReason for one that is not a measurement (`ABSENT_REASONS`), the flags in a note."""
    metric = Metric(r.metric)
    sign = VITAL_SIGNS.get(metric)
    if sign is None:
        return None
    if r.unit != sign.unit:
        raise ValueError(f"a {metric} reading is in {sign.unit!r}, not {r.unit!r}")
    flags = [QualityFlag(flag) for flag in r.quality]
    absent = _absent_reason(r.value, flags)
    return Observation(
        id=f"reading-{r.id}",
        meta=Meta(profile=[sign.profile]),
        status="preliminary" if PRELIMINARY_FLAGS.intersection(flags) else "final",
        category=[CodeableConcept(coding=[Coding(system=OBSERVATION_CATEGORY, code="vital-signs",
                                                 display="Vital Signs")])],
        code=CodeableConcept(coding=[Coding(system=system, code=code, display=display)
                                     for system, code, display in sign.codings], text=sign.text),
        subject=_patient_reference(r.person_id),
        effectiveDateTime=_utc(r.source_ts),
        valueQuantity=(
            None if absent is not None
            else Quantity(value=r.value, unit=sign.unit, system=UCUM, code=sign.unit)
        ),
        dataAbsentReason=absent,
        note=[Annotation(text="Device quality flags: " + ", ".join(flags))] if flags else None,
        device=Reference(identifier=Identifier(system=DEVICE_SYSTEM, value=r.device_id), display=r.device_id),
    )


def _absent_reason(value: float | None, flags: Sequence[QualityFlag]) -> CodeableConcept | None:
    """Why there is no value to send, or None when there is one.

    A value the device itself marks invalid, sensor-off or unavailable is not a measurement,
    so it is withheld like a missing one rather than written to the record as a result.
    """
    if value is not None and not NO_VALUE_REASONS.intersection(flags):
        return None
    code, display = next(((code, display) for flag, code, display in ABSENT_REASONS if flag in flags),
                         ("unknown", "Unknown"))
    return CodeableConcept(coding=[Coding(system=DATA_ABSENT_REASON, code=code, display=display)])


def flag_priority(priority: int) -> tuple[str, str]:
    """The flag-priority code and display for an alert's priority (`Priority`, 1 most urgent):
    emergency and urgent "PH", high "PM", supervision "PL", anything milder "PN" (the same
    bands as DetectedIssue's severity)."""
    if priority <= Priority.URGENT:
        return "PH", "High priority"
    if priority == Priority.HIGH:
        return "PM", "Medium priority"
    if priority == Priority.SUPERVISION:
        return "PL", "Low priority"
    return "PN", "No alarm"


def alert_flag(a: AlertFacts) -> Flag:
    """The alert as a Flag on the person's record: active until it is resolved or closed, with
    its priority in the `flag-priority` extension (`flag_priority`)."""
    technical = a.rule in TECHNICAL_RULES
    code, display = flag_priority(a.priority)
    return Flag(
        id=f"alert-{a.id}",
        extension=[Extension(url=FLAG_PRIORITY, valueCodeableConcept=CodeableConcept(
            coding=[Coding(system=FLAG_PRIORITY_SYSTEM, code=code, display=display)]))],
        status="active" if _alert_is_active(a) else "inactive",
        category=[CodeableConcept(coding=[
            Coding(system=FLAG_CATEGORY, code="safety", display="Safety") if technical
            else Coding(system=FLAG_CATEGORY, code="clinical", display="Clinical")
        ])],
        code=_alert_code(a),
        subject=_patient_reference(a.person_id),
        period=_alert_period(a),
    )


def alert_issue(a: AlertFacts) -> DetectedIssue:
    """The alert as a DetectedIssue: what was detected, why, how severe, and the outcome."""
    if a.priority <= Priority.URGENT:
        severity = "high"
    elif a.priority == Priority.HIGH:
        severity = "moderate"
    else:
        severity = "low"
    mitigation = None
    if a.outcome is not None and a.outcome.strip():
        mitigation = [DetectedIssueMitigation(
            action=CodeableConcept(text=a.outcome.strip()),
            date=_utc(a.ended_at) if a.ended_at is not None else None,
        )]
    return DetectedIssue(
        id=f"alert-issue-{a.id}",
        status="preliminary" if _alert_is_active(a) else "final",
        code=_alert_code(a),
        severity=severity,
        patient=_patient_reference(a.person_id),
        identifiedDateTime=_utc(a.opened_at),
        detail=_detail(a),
        mitigation=mitigation,
    )


def _detail(a: AlertFacts) -> str:
    """The alert's explanation as lines a clinician can read."""
    lines = [a.title.strip() or a.rule]
    why = a.explanation.get("why")
    if why:
        lines.append(f"Why: {str(why).rstrip('.')}.")
    evidence = a.explanation.get("evidence")
    if isinstance(evidence, list) and evidence:
        lines.append(f"Evidence ({len(evidence)}): " + "; ".join(_describe(item) for item in evidence) + ".")
    all_clear = a.explanation.get("all_clear")
    if all_clear:
        lines.append(f"All clear: {_describe(all_clear)}.")
    return "\n".join(lines)


def _describe(item: object) -> str:
    """One piece of evidence: "fall_detected from pendant-1 at 2024-05-01T10:00:00+00:00"."""
    if not isinstance(item, Mapping):
        return str(item)
    what = item.get("code") or item.get("state")
    if what is None:
        return ", ".join(f"{key}: {item[key]}" for key in sorted(item, key=str))
    parts = [str(what)]
    source = item.get("device_id") or item.get("topic")
    if source:
        parts.append(f"from {source}")
    when = item.get("source_ts") or item.get("received_at")
    if when:
        parts.append(f"at {when}")
    return " ".join(parts)


def communication(n: NotificationFacts) -> Communication:
    """One attempt to tell a responder about an alert.

    A failed attempt is "stopped" (EventStatus: ended after the main activity began but
    before it completed): the channel was tried and did not deliver. The reason goes in
    statusReason. `sent` is the time of the attempt either way.
    """
    if n.status not in NOTIFICATION_STATUSES:
        raise ValueError(f"a notification is sent or failed, not {n.status!r}")
    sent = n.status == "sent"
    role = _RESPONDER_ROLE_LABEL.get(n.responder_role, n.responder_role.replace("_", " "))
    recipient = f"{n.responder_name.strip()} ({role})" if n.responder_name.strip() else role
    reason = n.reason.strip()
    return Communication(
        id=f"notification-{n.id}",
        status="completed" if sent else "stopped",
        statusReason=CodeableConcept(text=reason) if not sent and reason else None,
        category=[CodeableConcept(coding=[Coding(system=COMMUNICATION_CATEGORY, code="alert", display="Alert")])],
        subject=_patient_reference(n.person_id),
        about=[Reference(reference=f"Flag/alert-{n.alert_id}")],
        recipient=[Reference(display=recipient)],
        medium=[CodeableConcept(text=n.channel)],
        sent=_utc(n.at),
        payload=[CommunicationPayload(contentString=reason)] if reason else None,
    )


def transaction_bundle(resources: Sequence[Resource], *, server_base: str | None = None) -> Bundle:
    """A transaction that PUTs each resource at its own id.

    fullUrl is "{ResourceType}/{id}", or absolute when `server_base` is given (FHIR R4 asks
    for an absolute fullUrl; servers resolve the relative form against their own base).
    """
    entries = []
    seen: set[str] = set()
    for resource in resources:
        if not resource.id:
            raise ValueError(f"a {resource.get_resource_type()} without an id cannot be written idempotently")
        url = f"{resource.get_resource_type()}/{resource.id}"
        if url in seen:
            raise ValueError(f"{url} appears twice in one transaction")
        seen.add(url)
        entries.append(BundleEntry(
            fullUrl=f"{server_base.rstrip('/')}/{url}" if server_base else url,
            resource=resource,
            request=BundleEntryRequest(method="PUT", url=url),
        ))
    return Bundle(type="transaction", entry=entries or None)


def record_for_alert(
    person: PersonFacts,
    alert: AlertFacts,
    notifications: Sequence[NotificationFacts],
    readings: Sequence[ReadingFacts],
    *,
    server_base: str | None = None,
) -> Bundle:
    """What the centre writes for one alert and its outcome: the person, the alert (Flag and
    DetectedIssue), each notification, and the readings behind it that have a code."""
    if alert.person_id != person.id:
        raise ValueError(f"alert {alert.id} is about person {alert.person_id}, not person {person.id}")
    for n in notifications:
        if n.alert_id != alert.id or n.person_id != person.id:
            raise ValueError(f"notification {n.id} is not about alert {alert.id} for person {person.id}")
    for r in readings:
        if r.person_id != person.id:
            raise ValueError(f"reading {r.id} is from person {r.person_id}, not person {person.id}")
    observations = [o for o in (observation(r) for r in _unique_by_id(readings)) if o is not None]
    return transaction_bundle(
        [
            patient(person),
            alert_flag(alert),
            alert_issue(alert),
            *(communication(n) for n in sorted(notifications, key=lambda n: n.id)),
            *observations,
        ],
        server_base=server_base,
    )


def bundle_json(bundle: Bundle) -> str:
    """The bundle as FHIR JSON, ready to POST to a FHIR server's base."""
    return bundle.model_dump_json()


def _unique_by_id(readings: Sequence[ReadingFacts]) -> list[ReadingFacts]:
    """Readings in id order, a reading listed twice kept once; two different readings with
    one id are a caller's mistake."""
    by_id: dict[int, ReadingFacts] = {}
    for r in readings:
        if by_id.setdefault(r.id, r) != r:
            raise ValueError(f"two different readings have id {r.id}")
    return [by_id[key] for key in sorted(by_id)]


def _alert_is_active(a: AlertFacts) -> bool:
    if a.status in ACTIVE_ALERT_STATUSES:
        return True
    if a.status in ENDED_ALERT_STATUSES:
        return False
    raise ValueError(f"unknown alert status {a.status!r}")


def _alert_code(a: AlertFacts) -> CodeableConcept:
    title = a.title.strip() or a.rule
    return CodeableConcept(coding=[Coding(system=ALERT_RULE_SYSTEM, code=a.rule, display=title)], text=title)


def _alert_period(a: AlertFacts) -> Period:
    if a.ended_at is not None and a.ended_at < a.opened_at:
        raise ValueError(f"alert {a.id} ends before it opens")
    return Period(start=_utc(a.opened_at), end=_utc(a.ended_at) if a.ended_at is not None else None)


def _patient_reference(person_id: int) -> Reference:
    return Reference(reference=f"Patient/person-{person_id}")


def _utc(moment: datetime) -> datetime:
    """The same instant in UTC. A naive time is refused: its instant is unknown."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time without a timezone cannot go into the record")
    return moment.astimezone(UTC)
