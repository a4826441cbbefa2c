"""A nurse's review note as FHIR R4 (R4B on the wire), for the person's record: a ClinicalImpression.

Why a ClinicalImpression and not a Communication: the note is a clinician's assessment of the
person's state after looking at evidence (the trend alert and its readings) with a plan, which is
what ClinicalImpression records (`status` completed, `assessor`, `investigation`/`finding` pointing
at what was assessed, `summary` the plan, `effectiveDateTime`); a Communication records a message
sent to someone, which the centre already uses for each notification of an alert
(`alerting/fhir.py`). The impression points at the alert's DetectedIssue ("alert-issue-{id}",
the id `fhir.alert_issue` gives it) as its `problem`, so the record reads alert, then review.

The Bundle is a transaction of PUTs with stable ids ("clinicalimpression-review-{note id}"), as the
alert writer's: sending it twice never duplicates anything. The Patient is built by the alert
writer's own function (`fhir.patient`, `patient_record.facts_of_person`), NHS number checks included.
"""

from datetime import UTC

from fhir.resources.R4B.clinicalimpression import ClinicalImpression
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.reference import Reference
from sqlalchemy.orm import Session

from alerting import fhir, patient_record
from monitoring_centre.nhs_number import InvalidNhsNumber
from monitoring_centre.storage import Alert, Person, ReviewNote

REVIEW_CODE_TEXT = "Telecare review of a trend alert or missed measurement"


def impression(note: ReviewNote, alert: Alert, by_name: str) -> ClinicalImpression:
    """The note as a ClinicalImpression (see the module docstring)."""
    return ClinicalImpression(
        id=f"clinicalimpression-review-{note.id}", status="completed",
        code=CodeableConcept(text=REVIEW_CODE_TEXT),
        description=f"Reviewed: {alert.title}",
        subject=Reference(reference=f"Patient/person-{note.person_id}"),
        effectiveDateTime=note.written_at.astimezone(UTC), date=note.written_at.astimezone(UTC),
        assessor=Reference(display=by_name),
        problem=[Reference(reference=f"DetectedIssue/alert-issue-{alert.id}", display=alert.title)],
        summary=f"Reviewed, plan: {note.plan}")


def write(session: Session, note: ReviewNote, alert: Alert, by_name: str, *,
          allow_test_nhs_numbers: bool = False) -> None:
    """Build the note's Bundle (Patient, ClinicalImpression) and keep it on the note
    (`record_status` "kept"); a person whose NHS number fails its check gets none ("refused",
    with the reason in `record_detail`): a wrong identifier would file the note under someone else."""
    person = session.get(Person, note.person_id)
    try:
        if person is None:
            raise LookupError(f"note {note.id} has no person")
        bundle = fhir.transaction_bundle([
            fhir.patient(patient_record.facts_of_person(person, allow_test_nhs_numbers=allow_test_nhs_numbers)),
            impression(note, alert, by_name)])
        note.record_bundle, note.record_status, note.record_detail = fhir.bundle_json(bundle), "kept", ""
    except (InvalidNhsNumber, LookupError, ValueError) as error:
        note.record_bundle, note.record_status, note.record_detail = "", "refused", str(error)
