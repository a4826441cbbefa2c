"""What the gateway serves, built from the centre's tables: FHIR R4 resources and searchset Bundles.

- Patient (`person-{id}`): from `people`, UK Core Patient (`alerting.fhir.patient`).
- Observation (`reading-{id}`): SpO2 and pulse readings from `readings`, UK Core vital signs
  (`alerting.fhir.observation`). A flagged reading is marked, never left out: "preliminary",
  or no value with a dataAbsentReason, and its flags in a note. Perfusion index has no agreed
  code and is not served.
- Flag (`alert-{id}`), DetectedIssue (`alert-issue-{id}`), Communication (`notification-{id}`):
  the newest version of each in the record the centre writes for every alert state
  (`alerting.patient_record.person_record`), exactly as written there.

Pure reads: no audit here (the router audits what it returns). Every search is about one person.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.resource import Resource
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from alerting import fhir, patient_record
from alerting.tables import Notification
from monitoring_centre.nhs_number import NHS_NUMBER_SYSTEM
from monitoring_centre.storage import Alert, Person, Reading
from telecare_protocol.codes import Metric

DEFAULT_COUNT = 50
MAX_COUNT = 100
"""`_count` above this is served as this (FHIR lets a server page at less than asked)."""
_PERSON_ID = re.compile(r"(?:.*/)?(?:Patient/)?person-([1-9][0-9]{0,9})")
_ROW_ID_MAX = 2**31 - 1


class SearchError(ValueError):
    """A search the gateway cannot run: the message says why (an OperationOutcome, 400)."""


class RecordType(StrEnum):
    """The resources served from the record the centre writes, and the id prefix of each."""

    FLAG = "Flag"
    DETECTED_ISSUE = "DetectedIssue"
    COMMUNICATION = "Communication"


RECORD_ID_PREFIX: dict[RecordType, str] = {
    RecordType.FLAG: "alert-", RecordType.DETECTED_ISSUE: "alert-issue-", RecordType.COMMUNICATION: "notification-",
}


def row_id(resource_id: str, prefix: str) -> int | None:
    """The row id in "{prefix}{id}", or None when the id is not of that form (or out of range)."""
    if not resource_id.startswith(prefix):
        return None
    digits = resource_id.removeprefix(prefix)
    if not digits.isascii() or not digits.isdigit() or len(digits) > 10 or digits.startswith("0"):
        return None
    value = int(digits)
    return value if 1 <= value <= _ROW_ID_MAX else None


def person_of_reference(text: str) -> int | None:
    """The person a `patient`/`subject` parameter names: "Patient/person-7", "person-7" or an
    absolute URL ending in "Patient/person-7"; None for anything else."""
    found = _PERSON_ID.fullmatch(text.strip())
    if found is None:
        return None
    value = int(found.group(1))
    return value if value <= _ROW_ID_MAX else None


def person_by_identifier(session: Session, token: str) -> Person | None:
    """The person with this NHS number: `identifier=https://fhir.nhs.uk/Id/nhs-number|9990001235`,
    or the bare number. Raises SearchError for another identifier system."""
    system, bar, value = token.rpartition("|")
    if bar and system != NHS_NUMBER_SYSTEM:
        raise SearchError(f"patients are found by identifier system {NHS_NUMBER_SYSTEM} only")
    digits = value.replace(" ", "")
    if not re.fullmatch(r"[0-9]{10}", digits):
        return None
    return session.scalar(select(Person).where(Person.nhs_number == digits))


def patient(person: Person, *, allow_test_nhs_numbers: bool) -> Resource:
    """UK Core Patient. Raises InvalidNhsNumber for a stored number that fails the check."""
    return fhir.patient(patient_record.facts_of_person(person, allow_test_nhs_numbers=allow_test_nhs_numbers))


VITAL_SIGN_CODES: dict[str, Metric] = {
    code: metric
    for metric, sign in fhir.VITAL_SIGNS.items() for system, code, _ in sign.codings if system == fhir.LOINC
}
"""LOINC code → metric: 2708-6 and 59408-5 → SpO2, 8867-4 → pulse rate."""


def metrics_of_codes(param: str) -> set[Metric]:
    """The metrics a `code` parameter asks for: comma-separated tokens, `[system|]code`, with
    system `http://loinc.org` when given. A code the gateway does not serve matches nothing."""
    metrics = set()
    for token in param.split(","):
        system, bar, code = token.strip().rpartition("|")
        if bar and system and system != fhir.LOINC:
            continue
        if code in VITAL_SIGN_CODES:
            metrics.add(VITAL_SIGN_CODES[code])
    return metrics


class Comparator(StrEnum):
    EQ = "eq"
    GE = "ge"
    LE = "le"
    GT = "gt"
    LT = "lt"


@dataclass(frozen=True)
class DateBound:
    """A `date` parameter: `comparator`, and the period its value names, [start, end)."""

    comparator: Comparator
    start: datetime
    end: datetime


def date_bound(param: str) -> DateBound:
    """`ge2026-11-01`, `le2026-11-30T12:00:00Z`, `2026-11` (eq): a prefix (eq when none) and a
    date (YYYY, YYYY-MM, YYYY-MM-DD: that whole period, in UTC) or a dateTime with its
    timezone (that second). Raises SearchError for another prefix or form."""
    prefix = param[:2] if param[:2].isalpha() else "eq"
    value = param[2:] if param[:2].isalpha() else param
    try:
        comparator = Comparator(prefix)
    except ValueError:
        raise SearchError(f"date: prefix {prefix!r} is not one of eq, ge, le, gt, lt") from None
    try:
        if re.fullmatch(r"[0-9]{4}", value):
            start = datetime(int(value), 1, 1, tzinfo=UTC)
            end = datetime(int(value) + 1, 1, 1, tzinfo=UTC)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}", value):
            year, month = int(value[:4]), int(value[5:])
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise SearchError("date: a dateTime needs its timezone (Z or +hh:mm)")
            start = moment.astimezone(UTC).replace(microsecond=0)
            end = start + timedelta(seconds=1)
    except ValueError as problem:
        if isinstance(problem, SearchError):
            raise
        raise SearchError(f"date: {value!r} is not a FHIR date or dateTime") from None
    return DateBound(comparator, start, end)


@dataclass(frozen=True)
class Page:
    """One page of a search: the resources, how many match in all, and `snapshot`, the newest
    row id the search can see (later pages of it see no newer rows, so nothing shifts)."""

    resources: list[Resource]
    total: int
    snapshot: int


def _dated(query: Select[Any], bounds: Sequence[DateBound]) -> Select[Any]:
    for bound in bounds:
        moment = Reading.source_ts
        if bound.comparator is Comparator.EQ:
            query = query.where(moment >= bound.start, moment < bound.end)
        elif bound.comparator is Comparator.GE:
            query = query.where(moment >= bound.start)
        elif bound.comparator is Comparator.GT:
            query = query.where(moment >= bound.end)
        elif bound.comparator is Comparator.LE:
            query = query.where(moment < bound.end)
        else:
            query = query.where(moment < bound.start)
    return query


def observations(session: Session, person_id: int, metrics: set[Metric] | None, bounds: Sequence[DateBound], *,
                 offset: int, count: int, snapshot: int | None) -> Page:
    """The person's SpO2 and pulse Observations, newest first (by when they were measured),
    `count` from `offset`. `metrics` None: both; empty: none. `snapshot`: the first page's."""
    served = {Metric.SPO2, Metric.PULSE_RATE} if metrics is None else metrics & {Metric.SPO2, Metric.PULSE_RATE}
    if snapshot is None:
        snapshot = session.scalar(select(func.max(Reading.id))) or 0
    where = _dated(select(Reading).where(Reading.person_id == person_id, Reading.metric.in_([m.value for m in served]),
                                         Reading.id <= snapshot), bounds)
    total = session.scalar(select(func.count()).select_from(where.subquery())) or 0
    rows = session.scalars(where.order_by(Reading.source_ts.desc(), Reading.id.desc()).offset(offset).limit(count))
    built = [fhir.observation(patient_record.facts_of_reading(row)) for row in rows]
    return Page([o for o in built if o is not None], total, snapshot)


def observation_by_id(session: Session, resource_id: str) -> tuple[int, Resource] | None:
    """(person id, Observation) for "reading-{id}" of a served metric, else None."""
    key = row_id(resource_id, "reading-")
    row = session.get(Reading, key) if key is not None else None
    if row is None or row.metric not in (Metric.SPO2.value, Metric.PULSE_RATE.value):
        return None
    built = fhir.observation(patient_record.facts_of_reading(row))
    return (row.person_id, built) if built is not None else None


def record_resources(session: Session, person_id: int, kind: RecordType) -> list[Resource]:
    """The person's resources of this type in their record, in the order first written."""
    bundle = patient_record.person_record(session, person_id)
    model = get_fhir_model_class(kind.value)
    found: list[Resource] = []
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == kind.value:
            resource = model.model_validate(entry["resource"])
            assert isinstance(resource, Resource)  # every model of a resource type is one
            found.append(resource)
    return found


def person_of_record_resource(session: Session, kind: RecordType, resource_id: str) -> int | None:
    """Whose record a Flag, DetectedIssue or Communication id belongs to, or None."""
    if kind is RecordType.COMMUNICATION:
        key = row_id(resource_id, RECORD_ID_PREFIX[kind])
        notification = session.get(Notification, key) if key is not None else None
        alert_id = notification.alert_id if notification is not None else None
    else:
        alert_id = row_id(resource_id, RECORD_ID_PREFIX[kind])
    alert = session.get(Alert, alert_id) if alert_id is not None else None
    return alert.person_id if alert is not None else None


def searchset(resources: Sequence[Resource], *, base: str, total: int, self_url: str, next_url: str | None) -> Bundle:
    """A searchset Bundle: each resource a match with its absolute fullUrl, `total`, and the
    `self` and (when there are more) `next` links."""
    links = [BundleLink(relation="self", url=self_url)]
    if next_url is not None:
        links.append(BundleLink(relation="next", url=next_url))
    entries = [BundleEntry(fullUrl=f"{base}/{r.get_resource_type()}/{r.id}", resource=r,
                           search=BundleEntrySearch(mode="match")) for r in resources]
    return Bundle(type="searchset", total=total, link=links, entry=entries or None)
