"""UK Core on the record's resources: the Patient's NHS number with its verification status, the
vital-signs Observations' profiles and units, and the Flag's priority extension. Each resource is
round-tripped through `fhir.resources` (the JSON parsed back into its model)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from alerting import fhir
from telecare_protocol.codes import Priority

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _json(resource: Any) -> dict[str, Any]:
    body: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return body


def test_the_patient_claims_uk_core_and_says_the_nhs_number_was_not_traced() -> None:
    built = fhir.patient(fhir.PersonFacts(7, "Ada", "999 000 1235", allow_test_nhs_number=True))
    body = _json(Patient.model_validate_json(built.model_dump_json()))
    assert body["meta"]["profile"] == ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]
    assert body["identifier"] == [{
        "extension": [{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
            "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
                "code": "02", "display": "Number present but not traced"}]}}],
        "system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990001235"}]


def test_a_patient_without_an_nhs_number_has_no_identifier() -> None:
    assert fhir.patient(fhir.PersonFacts(7, "Ada", None)).identifier is None


@pytest.mark.parametrize(("metric", "unit", "profile", "loinc"), [
    ("spo2", "%", "UKCore-Observation-VitalSigns-OxygenSaturation", {"2708-6", "59408-5"}),
    ("pulse_rate", "/min", "UKCore-Observation-VitalSigns-HeartRate", {"8867-4"}),
])
def test_vital_signs_claim_their_uk_core_profile(metric: str, unit: str, profile: str, loinc: set[str]) -> None:
    built = fhir.observation(fhir.ReadingFacts(1, 7, "oximeter-1", metric, 90, unit, (), AT))
    assert built is not None
    body = _json(Observation.model_validate_json(built.model_dump_json()))
    assert body["meta"]["profile"] == [f"https://fhir.hl7.org.uk/StructureDefinition/{profile}"]
    assert body["category"][0]["coding"][0]["code"] == "vital-signs"
    assert {c["code"] for c in body["code"]["coding"] if c["system"] == "http://loinc.org"} == loinc
    assert body["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert body["valueQuantity"]["code"] == unit


@pytest.mark.parametrize(("priority", "code"), [
    (Priority.EMERGENCY, "PH"), (Priority.URGENT, "PH"), (Priority.HIGH, "PM"), (Priority.SUPERVISION, "PL"),
    (Priority.RESTORAL, "PN"), (Priority.ROUTINE, "PN"),
])
def test_the_flag_carries_the_flag_priority_extension(priority: Priority, code: str) -> None:
    alert = fhir.AlertFacts(id=3, person_id=7, rule="pendant_alarm", title="Help button", priority=priority,
                            status="open", outcome=None, opened_at=AT, last_seen_at=AT, explanation={})
    body = _json(Flag.model_validate_json(fhir.alert_flag(alert).model_dump_json()))
    assert body["extension"] == [{
        "url": "http://hl7.org/fhir/StructureDefinition/flag-priority",
        "valueCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-priority-code",
                                             "code": code, "display": fhir.flag_priority(priority)[1]}]}}]
