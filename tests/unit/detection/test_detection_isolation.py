"""A bug in one family of rules costs only that family's decisions: never an alarm raised by the
same message, never the other people's timers."""

import pytest

from detection.activity import ActivityRules
from detection.engine import Engine
from detection.supervision import SupervisionRules
from telecare_protocol import EventCode
from tests.support.detection_builders import at, beat, event, profile, raised


def _broken(*args: object, **kwargs: object) -> list[object]:
    raise RuntimeError("a bug in a rule")


def test_a_failing_activity_rule_does_not_swallow_the_press(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ActivityRules, "event", _broken)
    engine = Engine([profile()])
    decisions = engine.observe(event(at(hours=3), "pendant-001", EventCode.MANUAL_ALARM))
    assert [(a.rule, a.priority) for a in raised(decisions)] == [("pendant_alarm", 1)]
    assert engine.counts.rule_failures == {"activity": 1}


def test_a_failing_supervision_rule_does_not_swallow_the_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SupervisionRules, "message", _broken)
    engine = Engine([profile()])
    decisions = engine.observe(event(at(hours=3), "pendant-001", EventCode.FALL_DETECTED))
    assert [(a.rule, a.priority) for a in raised(decisions)] == [("fall", 1)]
    assert engine.counts.rule_failures == {"supervision": 1}


def test_a_failing_timer_rule_still_lets_the_hub_go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ActivityRules, "tick", _broken)
    engine = Engine([profile()])
    engine.observe(beat(at()))
    decisions = engine.tick(at(hours=1))
    assert [a.rule for a in raised(decisions)] == ["hub_offline"]
    assert engine.counts.rule_failures == {"activity": 1}
