"""A person's eFI category from their GP record, posted as a FHIR Observation.

The electronic Frailty Index is computed inside the GP systems (SystmOne, EMIS), and GP
records code its result in SNOMED CT. The gateway takes either form a GP system holds:

- the score: code `EFI_SCORE` (SNOMED CT 713634000, the electronic frailty index score, as the
  issue and GP-record extraction code lists use it) with `valueQuantity` the eFI as a fraction
  from 0 to 1 (a value above 1 is refused: it is not a fraction), placed in its category by
  Clegg et al. 2016's cut-offs (`monitoring_centre.frailty.category_of`); or the score code
  with `valueCodeableConcept` one of the findings below;
- the finding: code one of `FRAILTY_FINDINGS` (SNOMED CT UK extension: 925791000000100 mild,
  925831000000107 moderate, 925861000000102 severe frailty, the codes of the GP contract's
  frailty identification). "Fit" has no finding code: it comes as a score.

The subject is `Patient/person-{id}` or the NHS number (`identifier` with system
`https://fhir.nhs.uk/Id/nhs-number`). The status must be final, amended or corrected: a
preliminary or entered-in-error result never sets a category.
"""

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from centre_app.fhir_gateway.resources import person_of_reference
from monitoring_centre.frailty import FrailtyCategory, category_of
from monitoring_centre.nhs_number import NHS_NUMBER_SYSTEM
from monitoring_centre.storage import Person

SNOMED = "http://snomed.info/sct"
EFI_SCORE = "713634000"
FRAILTY_FINDINGS: dict[str, FrailtyCategory] = {
    "925791000000100": FrailtyCategory.MILD,
    "925831000000107": FrailtyCategory.MODERATE,
    "925861000000102": FrailtyCategory.SEVERE,
}
ACCEPTED_STATUSES = frozenset({"final", "amended", "corrected"})


class ImportRefused(ValueError):
    """The Observation cannot set a frailty category; the message says why (422)."""


@dataclass(frozen=True)
class FrailtyResult:
    """What an eFI Observation says: the category, how it was given, and whose it is."""

    category: FrailtyCategory
    evidence: str
    """"eFI 0.31" or "SNOMED CT 925831000000107", with the Observation's effective time if any."""
    subject: str
    """The subject reference or identifier as sent (for the refusal of a person not found)."""


def parse(body: dict[str, Any]) -> tuple[Observation, FrailtyResult]:
    """The validated Observation and its category. Raises ImportRefused for a body that is not
    a valid FHIR Observation, a status not accepted, or a code or value that is not an eFI."""
    if body.get("resourceType") != "Observation":
        raise ImportRefused("the body must be a FHIR Observation")
    try:
        observation = Observation.model_validate(body)
    except ValidationError as problem:
        first = problem.errors()[0]
        raise ImportRefused(f"not a valid Observation: {'.'.join(str(p) for p in first['loc'])}: "
                            f"{first['msg']}") from None
    if observation.status not in ACCEPTED_STATUSES:
        raise ImportRefused(f"status {observation.status!r}: only a final, amended or corrected result sets a category")
    codes = {str(coding.code) for coding in (observation.code.coding or []) if coding.system == SNOMED}
    category = None
    evidence = ""
    finding = sorted(codes & FRAILTY_FINDINGS.keys())
    if finding:
        category, evidence = FRAILTY_FINDINGS[finding[0]], f"SNOMED CT {finding[0]}"
    elif EFI_SCORE in codes:
        if observation.valueQuantity is not None and observation.valueQuantity.value is not None:
            value = float(observation.valueQuantity.value)
            try:
                category = category_of(value)
            except ValueError as problem:
                raise ImportRefused(str(problem)) from None
            evidence = f"eFI {value:g}"
        elif observation.valueCodeableConcept is not None:
            valued = sorted({str(c.code) for c in (observation.valueCodeableConcept.coding or [])
                             if c.system == SNOMED and c.code in FRAILTY_FINDINGS})
            if valued:
                category, evidence = FRAILTY_FINDINGS[str(valued[0])], f"SNOMED CT {valued[0]}"
    if category is None:
        raise ImportRefused(f"not an eFI: code SNOMED CT {EFI_SCORE} with a value from 0 to 1 (or a frailty "
                            f"finding), or a finding code {', '.join(FRAILTY_FINDINGS)}")
    if observation.effectiveDateTime is not None:
        evidence += f", effective {observation.effectiveDateTime.isoformat()}"
    subject = observation.subject
    if subject is None:
        raise ImportRefused("the Observation needs a subject: Patient/person-{id} or the NHS number")
    named = subject.reference or (f"{subject.identifier.system}|{subject.identifier.value}"
                                  if subject.identifier is not None else "")
    return observation, FrailtyResult(category, evidence, str(named))


def person_of(session: Session, observation: Observation) -> Person | None:
    """The person the Observation is about, or None when no such person is held."""
    subject = observation.subject
    if subject is None:
        return None
    if subject.reference:
        person_id = person_of_reference(subject.reference)
        return session.get(Person, person_id) if person_id is not None else None
    identifier = subject.identifier
    if identifier is None or identifier.system != NHS_NUMBER_SYSTEM or not identifier.value:
        return None
    return session.scalar(select(Person).where(Person.nhs_number == identifier.value.replace(" ", "")))
