"""What the engine decides (`Raise`, `Clear`) and the per-person bookkeeping of open conditions.

A condition is one (person, rule, subject). The engine raises it once, stays quiet while it
persists, and marks every `Raise` in its explanation with an `episode`:

- `"new"`: a condition that was not open (what an operator sees as a new alert);
- `"escalated"`: already open, now at a more urgent priority;
- `"repeat"`: already open, with new evidence (the centre counts repeats).

Self-clearing conditions (supervision, door left open, ...) end with a `Clear`. Clinical
conditions end silently (`end_quietly`): a normal reading never cancels a human's concern,
but a later relapse is a new episode.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detection.defaults import Settings
from detection.people import PersonProfile
from detection.rules import RuleId


@dataclass(frozen=True)
class Raise:
    person: str
    rule: RuleId
    subject: str
    """"" for person-level conditions; the device id for per-device ones."""
    priority: int
    title: str
    explanation: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class Clear:
    person: str
    rule: RuleId
    subject: str
    at: datetime
    explanation: dict[str, Any]


Decision = Raise | Clear


_DEFAULT_SETTINGS = {rule: Settings(rule) for rule in RuleId}
"""Shared by everyone without overrides for a rule (never mutated)."""


@dataclass
class PersonContext:
    """A person's profile, resolved rule settings and open conditions."""

    profile: PersonProfile
    settings: dict[RuleId, Settings] = field(default_factory=dict)
    open: dict[tuple[RuleId, str], int] = field(default_factory=dict)
    """(rule, subject) → priority of the open condition."""

    def __post_init__(self) -> None:
        self.settings = {rule: Settings(rule, self.profile.rules[rule]) if rule in self.profile.rules
                         else _DEFAULT_SETTINGS[rule] for rule in RuleId}

    def enabled(self, rule: RuleId) -> bool:
        return self.settings[rule].b("enabled")

    def is_open(self, rule: RuleId, subject: str = "") -> bool:
        return (rule, subject) in self.open

    def raise_(self, rule: RuleId, subject: str, priority: int, title: str, explanation: dict[str, Any],
               at: datetime, *, repeat: bool = False) -> list[Decision]:
        """Raise a condition unless it is already open at this priority (or `repeat` says there is new evidence)."""
        if not self.enabled(rule):
            return []
        key = (rule, subject)
        before = self.open.get(key)
        if before is None:
            episode = "new"
        elif priority < before:
            episode = "escalated"
        elif repeat:
            episode = "repeat"
        else:
            return []
        self.open[key] = min(priority, before) if before is not None else priority
        body = {"rule": rule, "episode": episode, **explanation}
        return [Raise(self.profile.id, rule, subject, priority, title, body, at)]

    def clear(self, rule: RuleId, subject: str, at: datetime, explanation: dict[str, Any]) -> list[Decision]:
        """The all-clear of an open, self-clearing condition."""
        if self.open.pop((rule, subject), None) is None:
            return []
        return [Clear(self.profile.id, rule, subject, at, {"rule": rule, **explanation})]

    def end_quietly(self, rule: RuleId, subject: str = "") -> None:
        """The episode is over but a human closes its alert: no `Clear` (clinical rules)."""
        self.open.pop((rule, subject), None)
