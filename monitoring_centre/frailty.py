"""A person's frailty category: the electronic Frailty Index (eFI) of their GP record.

The eFI counts 36 deficits coded in the GP record (computed inside SystmOne and EMIS), as a
fraction from 0 to 1. Its four categories (Clegg et al., Age and Ageing 2016):

| category   | eFI          |
|------------|--------------|
| `fit`      | 0 - 0.12     |
| `mild`     | 0.13 - 0.24  |
| `moderate` | 0.25 - 0.36  |
| `severe`   | > 0.36       |

The centre never computes it from its sensors (domain brief, "Risk stratification"): a clinician
or an administrator enters the category (`set_category`, source `entered`), or it is read from
the GP record (`set_from_gp_record`, source `gp_record`; the FHIR import that will call it comes
later). Every entry is a new row of `frailty_assessments`: the latest is the person's category,
the earlier ones its trajectory, which matters more than one value (Stow et al., BMC Medicine
2018). Each is audited with the category before and after, who, the source and the note.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.storage import FrailtyAssessment, utc_now

CLEGG_2016 = "electronic Frailty Index categories (Clegg et al., Age and Ageing 2016)"
GP_RECORD_ACTOR = "system:gp_record"
"""Who `set_from_gp_record` records as having made the entry."""
MAX_NOTE = 500


class FrailtyCategory(StrEnum):
    """An eFI category, mildest first (`RANK`)."""

    FIT = "fit"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


RANK: dict[FrailtyCategory, int] = {category: rank for rank, category in enumerate(FrailtyCategory)}
"""0 fit, 1 mild, 2 moderate, 3 severe: the categories' order."""
EFI_RANGE: dict[FrailtyCategory, str] = {
    FrailtyCategory.FIT: "eFI 0-0.12", FrailtyCategory.MILD: "eFI 0.13-0.24",
    FrailtyCategory.MODERATE: "eFI 0.25-0.36", FrailtyCategory.SEVERE: "eFI above 0.36",
}


class FrailtySource(StrEnum):
    """Where a category came from."""

    ENTERED = "entered"
    """Typed in by a clinician or an administrator."""
    GP_RECORD = "gp_record"
    """Read from the person's GP record."""


def category_of(efi: float) -> FrailtyCategory:
    """The category of an eFI value (0 to 1) as the GP system reports it, by Clegg 2016's cut-offs:
    fit up to 0.12, mild above 0.12 up to 0.24, moderate above 0.24 up to 0.36, severe above 0.36
    (0.36 is moderate; 0.3611, 13 deficits of 36 unrounded, is severe). Raises ValueError outside 0 to 1."""
    if not 0 <= efi <= 1:
        raise ValueError(f"an eFI is a fraction from 0 to 1, not {efi!r}")
    if efi <= 0.12:
        return FrailtyCategory.FIT
    if efi <= 0.24:
        return FrailtyCategory.MILD
    if efi <= 0.36:
        return FrailtyCategory.MODERATE
    return FrailtyCategory.SEVERE


@dataclass(frozen=True)
class Assessment:
    """One entry of a person's frailty history."""

    category: FrailtyCategory
    source: FrailtySource
    recorded_at: datetime
    recorded_by: str
    note: str

    @classmethod
    def of(cls, row: FrailtyAssessment) -> "Assessment":
        return cls(FrailtyCategory(row.category), FrailtySource(row.source), row.recorded_at, row.recorded_by,
                   row.note)


def history(session: Session, person_id: int) -> list[Assessment]:
    """Every entry for the person, newest first (the first is the current category)."""
    rows = session.scalars(select(FrailtyAssessment).where(FrailtyAssessment.person_id == person_id)
                           .order_by(FrailtyAssessment.recorded_at.desc(), FrailtyAssessment.id.desc()))
    return [Assessment.of(row) for row in rows]


@dataclass(frozen=True)
class Trajectory:
    """Where a person's category stands: the `current` entry, `since` when it has been that category
    (the first of the latest entries that all say it: a confirmation is no change), and `before`, the
    entry just before that change (None when the category never changed)."""

    current: Assessment
    since: datetime
    before: Assessment | None


def trajectories(session: Session, person_ids: list[int]) -> dict[int, Trajectory]:
    """The `Trajectory` of each of these people with any entry."""
    found: dict[int, list[Assessment]] = {}
    rows = session.scalars(select(FrailtyAssessment).where(FrailtyAssessment.person_id.in_(person_ids))
                           .order_by(FrailtyAssessment.person_id, FrailtyAssessment.recorded_at.desc(),
                                     FrailtyAssessment.id.desc()))
    for row in rows:
        found.setdefault(row.person_id, []).append(Assessment.of(row))
    result = {}
    for person_id, entries in found.items():
        current, since, before = entries[0], entries[0].recorded_at, None
        for entry in entries[1:]:
            if entry.category != current.category:
                before = entry
                break
            since = entry.recorded_at
        result[person_id] = Trajectory(current, since, before)
    return result


def set_category(session: Session, person_id: int, category: FrailtyCategory, *, by: str,
                 source: FrailtySource = FrailtySource.ENTERED, note: str = "") -> Assessment:
    """Record the person's category now. Audited (action `change_frailty`) with the category
    before (None for a first entry) and after, the source and the note, as JSON:
    `{"before": "mild", "after": "moderate", "source": "entered", "note": "..."}`. An entry equal
    to the current category is still recorded: it says the category was confirmed, and when.
    Raises ValueError for a note longer than `MAX_NOTE` characters."""
    if len(note) > MAX_NOTE:
        raise ValueError(f"a note has at most {MAX_NOTE} characters")
    before = history(session, person_id)
    row = FrailtyAssessment(person_id=person_id, category=category.value, source=source.value,
                            recorded_at=utc_now(), recorded_by=by, note=note)
    session.add(row)
    session.flush()
    audit.record(session, by, "change_frailty", [person_id], json.dumps(
        {"before": before[0].category.value if before else None, "after": category.value,
         "source": source.value, "note": note}, sort_keys=True))
    return Assessment.of(row)


def set_from_gp_record(session: Session, person_id: int, category: FrailtyCategory, *, note: str = "") -> Assessment:
    """The category as read from the person's GP record (source `gp_record`, by `GP_RECORD_ACTOR`).
    For the import of the GP record (a later issue); audited as `set_category`."""
    return set_category(session, person_id, category, by=GP_RECORD_ACTOR, source=FrailtySource.GP_RECORD, note=note)
