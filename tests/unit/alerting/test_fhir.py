"""The patient record: FHIR R4 resources built from plain facts, and the transaction that writes them."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from alerting.fhir import (
    ALERT_RULE_SYSTEM,
    AlertFacts,
    NotificationFacts,
    PersonFacts,
    ReadingFacts,
    alert_flag,
    alert_issue,
    bundle_json,
    communication,
    observation,
    patient,
    record_for_alert,
    transaction_bundle,
)
from monitoring_centre.nhs_number import NHS_NUMBER_SYSTEM, InvalidNhsNumber

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:iso:std:iso:11073:10101"
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

PERSON = PersonFacts(id=7, name="Ada Lovelace", nhs_number="943 476 5919", address="1 High Street, Leeds",
                     allow_test_nhs_number=True)  # a test-range number, as every test and demo person has
ALERT = AlertFacts(
    id=12, person_id=7, rule="fall", title="Fall detected (not cancelled by the wearer)", priority=1,
    status="resolved", outcome="ambulance_called", opened_at=T0, last_seen_at=T0 + timedelta(minutes=1),
    explanation={
        "rule": "fall",
        "why": "fall_detector pendant-1 reported fall_detected",
        "evidence": [{"message_id": "m-1", "device_id": "pendant-1", "code": "fall_detected",
                      "source_ts": "2024-05-01T10:00:00+00:00", "detail": {}}],
        "all_clear": {"message_id": "m-2", "device_id": "pendant-1", "code": "alarm_cancelled",
                      "source_ts": "2024-05-01T10:20:00+00:00", "detail": {}},
    },
    ended_at=T0 + timedelta(minutes=30),
)
SENT = NotificationFacts(id=31, alert_id=12, person_id=7, responder_name="Grace Hopper", responder_role="keyholder",
                         channel="sms", status="sent", at=T0 + timedelta(minutes=2), reason="fall alarm, step 3")
FAILED = replace(SENT, id=30, responder_name="Control room", responder_role="emergency_services", channel="voice",
                 status="failed", reason="line busy")
SPO2 = ReadingFacts(id=101, person_id=7, device_id="oximeter-1", metric="spo2", value=97.0, unit="%", quality=(),
                    source_ts=T0)
PULSE = replace(SPO2, id=102, metric="pulse_rate", value=72.0, unit="/min")
PERFUSION = replace(SPO2, id=103, metric="perfusion_index", value=4.5, unit="%")


def as_json(resource: Resource) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(resource.model_dump_json())
    return parsed


def codings(concept: Any) -> set[tuple[str, str]]:
    return {(coding.system, coding.code) for coding in concept.coding}


# --- every builder's output re-parses from its own JSON ---

def built_resources() -> list[Resource]:
    spo2 = observation(SPO2)
    assert spo2 is not None
    return [patient(PERSON), spo2, alert_flag(ALERT), alert_issue(ALERT), communication(SENT), communication(FAILED)]


@pytest.mark.parametrize("resource", built_resources(), ids=lambda r: r.get_resource_type())
def test_each_resource_reparses_from_its_own_json(resource: Resource) -> None:
    text = resource.model_dump_json()
    again = type(resource).model_validate_json(text)
    assert again.model_dump_json() == text


def test_the_bundle_reparses_with_typed_resources() -> None:
    text = bundle_json(record_for_alert(PERSON, ALERT, [SENT, FAILED], [SPO2, PULSE]))
    again = Bundle.model_validate_json(text)
    assert bundle_json(again) == text
    assert [type(entry.resource) for entry in again.entry or []] == [
        Patient, Flag, DetectedIssue, Communication, Communication, Observation, Observation,
    ]


# --- Patient ---

def test_patient_carries_the_normalised_nhs_number() -> None:
    p = patient(PERSON)
    assert p.id == "person-7"
    assert [(i.system, i.value) for i in p.identifier or []] == [(NHS_NUMBER_SYSTEM, "9434765919")]
    assert [n.text for n in p.name or []] == ["Ada Lovelace"]
    assert [a.text for a in p.address or []] == ["1 High Street, Leeds"]


def test_patient_without_nhs_number_or_address_has_neither() -> None:
    p = as_json(patient(replace(PERSON, nhs_number=None, address="")))
    assert "identifier" not in p
    assert "address" not in p


def test_an_invalid_stored_nhs_number_is_never_sent() -> None:
    with pytest.raises(InvalidNhsNumber, match="check digit mismatch"):
        patient(replace(PERSON, nhs_number="943 476 5918"))


@pytest.mark.parametrize(("number", "says"), [
    ("0000000000", "all ten digits are the same"), ("9999999999", "all ten digits are the same"),
    ("5000000005", "not in a range issued as NHS numbers"),
])
def test_a_placeholder_or_unissued_nhs_number_is_never_sent(number: str, says: str) -> None:
    """They pass the check digit; the record goes through the enrolment check, not the digit alone."""
    with pytest.raises(InvalidNhsNumber, match=says):
        patient(replace(PERSON, nhs_number=number))


def test_a_test_range_nhs_number_is_sent_only_where_the_centre_allows_it() -> None:
    with pytest.raises(InvalidNhsNumber, match="synthetic range"):
        patient(replace(PERSON, allow_test_nhs_number=False))
    issued = patient(replace(PERSON, nhs_number="401 023 2137", allow_test_nhs_number=False))
    assert [(i.system, i.value) for i in issued.identifier or []] == [(NHS_NUMBER_SYSTEM, "4010232137")]


# --- Observation ---

def test_spo2_has_both_loinc_codes_the_mdc_code_and_percent() -> None:
    o = observation(SPO2)
    assert o is not None
    assert o.id == "reading-101"
    assert codings(o.code) == {(LOINC, "59408-5"), (LOINC, "2708-6"), (MDC, "150456")}
    q = as_json(o)["valueQuantity"]
    assert q == {"value": 97.0, "unit": "%", "system": UCUM, "code": "%"}
    category = "http://terminology.hl7.org/CodeSystem/observation-category"
    assert [codings(c) for c in o.category or []] == [{(category, "vital-signs")}]
    assert o.subject is not None and o.subject.reference == "Patient/person-7"
    assert o.device is not None and o.device.display == "oximeter-1"
    assert o.status == "final"
    assert o.note is None


def test_pulse_rate_has_loinc_8867_4_the_mdc_code_and_per_minute() -> None:
    o = observation(PULSE)
    assert o is not None
    assert codings(o.code) == {(LOINC, "8867-4"), (MDC, "149530")}
    assert as_json(o)["valueQuantity"] == {"value": 72.0, "unit": "/min", "system": UCUM, "code": "/min"}


def test_perfusion_index_has_no_agreed_code_so_no_observation() -> None:
    assert observation(PERFUSION) is None


def test_a_reading_in_the_wrong_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="in '%'"):
        observation(replace(SPO2, unit="/min"))


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="temperature"):
        observation(replace(SPO2, metric="temperature"))


@pytest.mark.parametrize("flag", ["questionable", "low_perfusion", "early_estimate", "measurement_ongoing"])
def test_a_doubtful_reading_is_preliminary_and_carries_its_flag(flag: str) -> None:
    o = observation(replace(SPO2, value=91.0, quality=(flag,)))
    assert o is not None
    assert o.status == "preliminary"
    assert [note.text for note in o.note or []] == [f"Device quality flags: {flag}"]
    assert as_json(o)["valueQuantity"]["value"] == 91.0


def test_every_flag_of_a_reading_is_listed() -> None:
    o = observation(replace(SPO2, value=91.0, quality=("questionable", "low_perfusion")))
    assert o is not None
    assert [note.text for note in o.note or []] == ["Device quality flags: questionable, low_perfusion"]


@pytest.mark.parametrize(
    ("flag", "reason"), [("sensor_off", "not-performed"), ("invalid", "error"), ("data_unavailable", "unknown")]
)
def test_a_missing_value_says_why_and_has_no_quantity(flag: str, reason: str) -> None:
    o = observation(replace(SPO2, value=None, quality=(flag,)))
    assert o is not None
    body = as_json(o)
    assert "valueQuantity" not in body
    assert body["dataAbsentReason"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": reason,
         "display": {"not-performed": "Not Performed", "error": "Error", "unknown": "Unknown"}[reason]},
    ]
    assert flag in body["note"][0]["text"]


def test_a_value_the_device_marks_invalid_is_withheld() -> None:
    o = observation(replace(SPO2, value=62.0, quality=("invalid",)))
    assert o is not None
    body = as_json(o)
    assert "valueQuantity" not in body
    assert body["dataAbsentReason"]["coding"][0]["code"] == "error"


def test_an_unknown_quality_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="cosmic_ray"):
        observation(replace(SPO2, quality=("cosmic_ray",)))


# --- Flag ---

@pytest.mark.parametrize(
    ("status", "flag_status"),
    [("open", "active"), ("acknowledged", "active"), ("in_progress", "active"),
     ("resolved", "inactive"), ("closed", "inactive")],
)
def test_flag_status_follows_the_alert(status: str, flag_status: str) -> None:
    f = alert_flag(replace(ALERT, status=status))
    assert f.status == flag_status
    assert f.id == "alert-12"


def test_an_unknown_alert_status_is_refused() -> None:
    with pytest.raises(ValueError, match="snoozed"):
        alert_flag(replace(ALERT, status="snoozed"))
    with pytest.raises(ValueError, match="snoozed"):
        alert_issue(replace(ALERT, status="snoozed"))


def test_flag_carries_the_rule_title_and_period() -> None:
    body = as_json(alert_flag(ALERT))
    assert body["code"] == {
        "coding": [{"system": ALERT_RULE_SYSTEM, "code": "fall", "display": ALERT.title}], "text": ALERT.title,
    }
    assert body["period"] == {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:30:00Z"}
    assert body["subject"] == {"reference": "Patient/person-7"}


def test_an_open_alert_has_no_period_end() -> None:
    body = as_json(alert_flag(replace(ALERT, status="open", ended_at=None)))
    assert body["period"] == {"start": "2024-05-01T10:00:00Z"}


def test_an_alert_ending_before_it_opens_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it opens"):
        alert_flag(replace(ALERT, ended_at=T0 - timedelta(seconds=1)))


@pytest.mark.parametrize(("rule", "category"), [("fall", "clinical"), ("pendant_alarm", "clinical"),
                                                ("battery_low", "safety"), ("hub_offline", "safety")])
def test_flag_category_separates_the_person_from_the_equipment(rule: str, category: str) -> None:
    f = alert_flag(replace(ALERT, rule=rule))
    assert codings((f.category or [])[0]) == {("http://terminology.hl7.org/CodeSystem/flag-category", category)}


# --- DetectedIssue ---

@pytest.mark.parametrize(("priority", "severity"), [(1, "high"), (2, "high"), (3, "moderate"), (4, "low"),
                                                    (5, "low"), (9, "low")])
def test_detected_issue_severity_follows_priority(priority: int, severity: str) -> None:
    assert alert_issue(replace(ALERT, priority=priority)).severity == severity


@pytest.mark.parametrize(("status", "issue_status"), [("open", "preliminary"), ("in_progress", "preliminary"),
                                                      ("resolved", "final"), ("closed", "final")])
def test_detected_issue_is_final_once_the_alert_ends(status: str, issue_status: str) -> None:
    assert alert_issue(replace(ALERT, status=status)).status == issue_status


def test_detected_issue_explains_why_with_evidence_and_outcome() -> None:
    issue = alert_issue(ALERT)
    assert issue.id == "alert-issue-12"
    assert issue.detail == (
        "Fall detected (not cancelled by the wearer)\n"
        "Why: fall_detector pendant-1 reported fall_detected.\n"
        "Evidence (1): fall_detected from pendant-1 at 2024-05-01T10:00:00+00:00.\n"
        "All clear: alarm_cancelled from pendant-1 at 2024-05-01T10:20:00+00:00."
    )
    body = as_json(issue)
    assert body["identifiedDateTime"] == "2024-05-01T10:00:00Z"
    assert body["patient"] == {"reference": "Patient/person-7"}
    assert body["mitigation"] == [{"action": {"text": "ambulance_called"}, "date": "2024-05-01T10:30:00Z"}]


def test_detected_issue_without_outcome_has_no_mitigation() -> None:
    issue = alert_issue(replace(ALERT, status="open", outcome=None, ended_at=None, explanation={}))
    assert issue.mitigation is None
    assert issue.detail == ALERT.title


# --- Communication ---

def test_a_sent_notification_is_a_completed_communication() -> None:
    c = communication(SENT)
    body = as_json(c)
    assert body["id"] == "notification-31"
    assert body["status"] == "completed"
    assert "statusReason" not in body
    assert body["subject"] == {"reference": "Patient/person-7"}
    assert body["about"] == [{"reference": "Flag/alert-12"}]
    assert body["recipient"] == [{"display": "Grace Hopper (keyholder)"}]
    assert body["medium"] == [{"text": "sms"}]
    assert body["sent"] == "2024-05-01T10:02:00Z"
    assert body["payload"] == [{"contentString": "fall alarm, step 3"}]


def test_a_failed_notification_is_stopped_with_its_reason() -> None:
    body = as_json(communication(FAILED))
    assert body["status"] == "stopped"
    assert body["statusReason"] == {"text": "line busy"}
    assert body["recipient"] == [{"display": "Control room (emergency services)"}]


def test_an_unknown_notification_status_is_refused() -> None:
    with pytest.raises(ValueError, match="queued"):
        communication(replace(SENT, status="queued"))


# --- transaction bundle ---

def test_every_entry_is_a_put_to_its_own_id() -> None:
    bundle = record_for_alert(PERSON, ALERT, [SENT, FAILED], [SPO2, PULSE, PERFUSION])
    assert bundle.type == "transaction"
    entries = bundle.entry or []
    urls = []
    for entry in entries:
        assert entry.resource is not None and entry.request is not None
        url = f"{entry.resource.get_resource_type()}/{entry.resource.id}"
        assert entry.request.method == "PUT"
        assert entry.request.url == url
        assert entry.fullUrl == url
        urls.append(url)
    assert urls == [
        "Patient/person-7", "Flag/alert-12", "DetectedIssue/alert-issue-12",
        "Communication/notification-30", "Communication/notification-31",
        "Observation/reading-101", "Observation/reading-102",
    ]


def test_building_twice_gives_identical_json() -> None:
    first = bundle_json(record_for_alert(PERSON, ALERT, [SENT, FAILED], [SPO2, PULSE]))
    second = bundle_json(record_for_alert(PERSON, ALERT, [FAILED, SENT], [PULSE, SPO2, SPO2]))
    assert first == second


def test_a_server_base_makes_full_urls_absolute_and_leaves_requests_relative() -> None:
    bundle = transaction_bundle([patient(PERSON)], server_base="https://records.example/fhir/")
    entry = (bundle.entry or [])[0]
    assert entry.fullUrl == "https://records.example/fhir/Patient/person-7"
    assert entry.request is not None and entry.request.url == "Patient/person-7"


def test_a_resource_twice_in_one_transaction_is_refused() -> None:
    with pytest.raises(ValueError, match="Patient/person-7 appears twice"):
        transaction_bundle([patient(PERSON), patient(PERSON)])


def test_a_resource_without_id_is_refused() -> None:
    with pytest.raises(ValueError, match="without an id"):
        transaction_bundle([Patient()])


def test_two_different_readings_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="id 101"):
        record_for_alert(PERSON, ALERT, [], [SPO2, replace(SPO2, value=88.0)])


@pytest.mark.parametrize(
    ("alert", "notifications", "readings", "message"),
    [
        (replace(ALERT, person_id=8), [], [], "alert 12 is about person 8"),
        (ALERT, [replace(SENT, alert_id=13)], [], "notification 31"),
        (ALERT, [replace(SENT, person_id=8)], [], "notification 31"),
        (ALERT, [], [replace(SPO2, person_id=8)], "reading 101 is from person 8"),
    ],
)
def test_facts_about_someone_else_are_refused(
    alert: AlertFacts, notifications: list[NotificationFacts], readings: list[ReadingFacts], message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        record_for_alert(PERSON, alert, notifications, readings)


# --- time ---

def test_times_are_written_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=plus_two)
    o = observation(replace(SPO2, source_ts=local))
    assert o is not None
    assert as_json(o)["effectiveDateTime"] == "2024-05-01T10:00:00.250000Z"
    assert as_json(communication(replace(SENT, at=local)))["sent"] == "2024-05-01T10:00:00.250000Z"
    assert as_json(alert_flag(replace(ALERT, opened_at=local, ended_at=None)))["period"] == {
        "start": "2024-05-01T10:00:00.250000Z",
    }


def test_a_time_without_a_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="without a timezone"):
        observation(replace(SPO2, source_ts=datetime(2024, 5, 1, 10, 0)))
