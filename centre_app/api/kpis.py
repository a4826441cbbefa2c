"""`GET /api/v1/kpis`: the centre's answer-time KPIs (TEC Quality / TSA) for a window, overall,
per priority and per UTC day. The figures are computed in `monitoring_centre.kpis`; every
definition and formula is in docs/kpis.md.

Operators and administrators only (the centre's roles: `monitoring_centre.roles.Role`; a team lead
leads nurses, not operators): the figures are about the operators' call handling across every person
the centre monitors, whom both roles see anyway. A nurse, a family member or a person is refused (403, audited).

Not written to the audit log as a view of anyone's data: the answer is aggregate (counts, times,
outcome codes) with alert ids only, never a name; whoever follows an id to its alert does so through
the alert routes, which check access and audit.
"""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from centre_app.api.deps import AdminOrOperator, Db, DocumentedRoute, IsoBound, invalid
from monitoring_centre import kpis
from monitoring_centre.storage import begin_read, utc_now

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"], route_class=DocumentedRoute)




class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AnswerTargetOut(_Out):
    within_s: int
    fraction: float
    """0 to 1: 0.975 is 97.5 %."""
    source: str


class DurationsOut(_Out):
    """Seconds from a call reaching the centre; nearest-rank median and 90th percentile, null when `count` is 0."""

    count: int
    median_s: float | None
    p90_s: float | None


class TargetResultOut(_Out):
    within_s: int
    target: float
    answered_within: int
    """Answered by an operator within `within_s` (60.0 s is within 60 s)."""
    decided: int
    """The denominator: answered, ended without an answer, or still open and older than `within_s`."""
    pending: int
    """Still open and not older than `within_s`: not counted yet."""
    fraction: float | None
    met: bool | None
    """null when nothing is decided, or the targets do not apply (priority 4 and above)."""


class FiguresOut(_Out):
    alarms: int
    """Calls raised in the window: one alert is one call, whatever its repeats."""
    answered: int
    targets_apply: bool
    within: list[TargetResultOut]
    time_to_answer: DurationsOut
    time_to_accept: DurationsOut
    time_to_resolve: DurationsOut
    outcomes: dict[str, int]
    answered_late_ids: list[int]
    """Alert ids answered after 180 s: each needs an exception report (TSA)."""
    unanswered_ids: list[int]
    """Alert ids still open (nobody has answered or ended them)."""
    ended_unanswered_ids: list[int]
    """Alert ids that left `open` without an operator (the all-clear, or a responder's accept link)."""


class PriorityFiguresOut(FiguresOut):
    priority: int


class DayOut(_Out):
    day: date
    """A UTC day."""
    alarm_calls: FiguresOut
    supervision: FiguresOut


class KpisOut(_Out):
    from_: datetime = Field(validation_alias=AliasChoices("start", "from"), serialization_alias="from")
    """Inclusive, UTC."""
    to: datetime = Field(validation_alias=AliasChoices("end", "to"))
    """Exclusive, UTC: the history as it stood then."""
    as_of: datetime
    """The earlier of `to` and now: when open calls' ages are taken."""
    targets: list[AnswerTargetOut]
    alarm_calls: FiguresOut
    """Priorities 1 to 3: TEC Quality's "alarm calls", judged against the targets."""
    supervision: FiguresOut
    """Priority 4 and above: reported apart, not judged."""
    by_priority: list[PriorityFiguresOut]
    by_day: list[DayOut]


@router.get("")
def answer_times(user: AdminOrOperator, session: Db,
                 start: Annotated[IsoBound | None, Query(alias="from", description=(
                     "ISO 8601 date or date-time; UTC unless it has an offset; a date is its midnight. "
                     "Default: 7 days before `to`."))] = None,
                 end: Annotated[IsoBound | None, Query(alias="to", description=(
                     "ISO 8601 date or date-time, exclusive; UTC unless it has an offset. Default: now."))] = None,
                 ) -> KpisOut:
    """The answer-time KPIs of the calls raised in `[from, to)` (at most 400 days): per group, the
    number of calls, the fractions answered within 60 s and 180 s against TEC Quality's targets
    (97.5 %, 99 %), median and 90th percentile of the times to answer, to a responder accepting and
    to resolution, outcomes by code, and the alert ids answered late or not at all. 422 when `from`
    is not before `to` or the window is longer than 400 days."""
    now = utc_now()
    try:
        start, end = kpis.window(start, end, now)
    except kpis.WindowRefused as refused:
        raise invalid(("query", refused.bound), str(refused)) from None
    session.commit()  # end the sign-in's transaction: the history is read in a read-only one
    begin_read(session)
    calls = kpis.read_calls(session, start, end)
    session.commit()
    return KpisOut.model_validate(kpis.report(calls, start, end, now))
