"""The band table (`detection.thresholds.BANDS`): every band edge gives the right band name, priority and
title, on NEWS2 Scale 1, Scale 2 on air and on oxygen, and for the pulse; the title always names the band
that fired (an alert once read "SpO2 91 %: review today", although 91 % is in the urgent band)."""

from typing import Any

import pytest

from detection.defaults import Settings
from detection.engine import Engine, Raise
from detection.rules import RuleId
from detection.thresholds import BANDS, BandName, band_of, bands
from tests.support.detection_builders import at, profile, pulse, run, spo2

SCALE1_URGENT = "urgent, 999/A&E now (NEWS2 Scale 1 ≤ 92 %)"
SCALE1_REVIEW = "review today, GP or 111 today (NEWS2 Scale 1 93–94 %)"
S2_URGENT = "urgent, urgent clinical review now (NEWS2 score 3)"
S2_REVIEW = "review today, clinical review today (NEWS2 score 2)"
O2_HIGH_URGENT = "urgent, urgent clinical review now: above the 88-92 % target on oxygen (NEWS2 score 3)"
O2_HIGH_REVIEW = "review today, clinical review today: above the 88-92 % target on oxygen (NEWS2 score 2)"


def two_spot_checks(value: float, metric: str = "spo2", **person: Any) -> list[Raise]:
    """Two clean spot checks of `value` five minutes apart (the re-measurement confirms)."""
    make = spo2 if metric == "spo2" else pulse
    decisions = run(Engine([profile(**person)]), [make(at(hours=9), value), make(at(hours=9, minutes=5), value)])
    return [d for d in decisions if isinstance(d, Raise)]


@pytest.mark.parametrize(("value", "priority", "title"), [
    (90, 2, f"SpO2 90 %: {SCALE1_URGENT}"),
    (91, 2, f"SpO2 91 %: {SCALE1_URGENT}"),
    (92, 2, f"SpO2 92 %: {SCALE1_URGENT}"),
    (93, 3, f"SpO2 93 %: {SCALE1_REVIEW}"),
    (94, 3, f"SpO2 94 %: {SCALE1_REVIEW}"),
    (95, None, None),
    (92.4, 2, f"SpO2 92 %: {SCALE1_URGENT}"),  # rounded half up, as the oximeter shows it
    (92.5, 3, f"SpO2 93 %: {SCALE1_REVIEW}"),
])
def test_scale1_band_edges(value: float, priority: int | None, title: str | None) -> None:
    alerts = two_spot_checks(value)
    assert [(a.priority, a.title) for a in alerts] == ([] if priority is None else [(priority, title)])
    if alerts:
        assert alerts[0].explanation["band"]["name"] == ("urgent" if priority == 2 else "review today")
        assert alerts[0].explanation["urgency"] == alerts[0].explanation["band"]["name"]


@pytest.mark.parametrize(("value", "on_oxygen", "priority", "title"), [
    (83, False, 2, f"SpO2 83 %: {S2_URGENT} (NEWS2 Scale 2, on air ≤ 83 %)"),
    (84, False, 3, f"SpO2 84 %: {S2_REVIEW} (NEWS2 Scale 2, on air 84–85 %)"),
    (85, False, 3, f"SpO2 85 %: {S2_REVIEW} (NEWS2 Scale 2, on air 84–85 %)"),
    (86, False, None, None),
    (92, False, None, None),  # inside the 88-92 % target
    (97, False, None, None),  # on air, a high saturation is no alarm
    (83, True, 2, f"SpO2 83 %: {S2_URGENT} (NEWS2 Scale 2, on oxygen ≤ 83 %)"),
    (85, True, 3, f"SpO2 85 %: {S2_REVIEW} (NEWS2 Scale 2, on oxygen 84–85 %)"),
    (86, True, None, None),
    (94, True, None, None),
    (95, True, 3, f"SpO2 95 %: {O2_HIGH_REVIEW} (NEWS2 Scale 2, on oxygen 95–96 %)"),
    (96, True, 3, f"SpO2 96 %: {O2_HIGH_REVIEW} (NEWS2 Scale 2, on oxygen 95–96 %)"),
    (97, True, 2, f"SpO2 97 %: {O2_HIGH_URGENT} (NEWS2 Scale 2, on oxygen ≥ 97 %)"),
])
def test_scale2_band_edges(value: int, on_oxygen: bool, priority: int | None, title: str | None) -> None:
    alerts = two_spot_checks(value, spo2_scale=2, on_oxygen=on_oxygen)
    assert [(a.priority, a.title) for a in alerts] == ([] if priority is None else [(priority, title)])


@pytest.mark.parametrize(("value", "rule", "priority", "title"), [
    (110, None, None, None),
    (111, "pulse_high", 3, f"Pulse high 111 /min: {S2_REVIEW} (NEWS2 pulse, high 111–130 /min)"),
    (130, "pulse_high", 3, f"Pulse high 130 /min: {S2_REVIEW} (NEWS2 pulse, high 111–130 /min)"),
    (131, "pulse_high", 2, f"Pulse high 131 /min: {S2_URGENT} (NEWS2 pulse, high ≥ 131 /min)"),
    (41, None, None, None),  # 41-50 scores only 1: no review band by default
    (40, "pulse_low", 2, f"Pulse low 40 /min: {S2_URGENT} (NEWS2 pulse, low ≤ 40 /min)"),
])
def test_pulse_band_edges(value: int, rule: str | None, priority: int | None, title: str | None) -> None:
    alerts = two_spot_checks(value, metric="pulse")
    assert [(a.rule, a.priority, a.title) for a in alerts] == ([] if rule is None else [(rule, priority, title)])


def test_a_pulse_low_review_band_set_for_a_person() -> None:
    alerts = two_spot_checks(50, metric="pulse", rules={"pulse_low": {"review_at_or_below": 50}})
    assert [(a.priority, a.title) for a in alerts] == [
        (3, "Pulse low 50 /min: review today, clinical review today (NEWS2 score 1) (NEWS2 pulse, low 41–50 /min)")]
    assert two_spot_checks(51, metric="pulse", rules={"pulse_low": {"review_at_or_below": 50}}) == []


def test_a_review_alert_on_a_run_with_an_urgent_reading_says_so() -> None:
    """93 % then 91 %: two readings at or below 94 % confirm the review band; 91 % alone does not confirm
    the urgent band. The title is the review band's, with the unconfirmed urgent reading named."""
    engine = Engine([profile()])
    first = run(engine, [spo2(at(hours=9), 93), spo2(at(hours=9, minutes=5), 91)])
    review = [d for d in first if isinstance(d, Raise)]
    assert [(a.priority, a.title) for a in review] == [
        (3, f"SpO2 93 %: {SCALE1_REVIEW}; 91 % seen, urgent if confirmed")]
    assert review[0].explanation["readings"]["beyond_band_unconfirmed"] == 91
    urgent = [d for d in run(engine, [spo2(at(hours=9, minutes=10), 90)]) if isinstance(d, Raise)]
    assert [(a.priority, a.title, a.explanation["episode"]) for a in urgent] == [
        (2, f"SpO2 90 %: {SCALE1_URGENT}", "escalated")]


def test_a_persons_own_edges_move_the_bands_and_the_titles() -> None:
    alerts = two_spot_checks(91, rules={"spo2_low": {"urgent_at_or_below": 90}})
    assert [(a.priority, a.title) for a in alerts] == [
        (3, "SpO2 91 %: review today, GP or 111 today (NEWS2 Scale 1 91–94 %)")]


def test_low_and_high_readings_on_oxygen_never_make_one_run() -> None:
    assert two_spot_checks(84, spo2_scale=2, on_oxygen=True)[0].priority == 3
    mixed = run(Engine([profile(spo2_scale=2, on_oxygen=True)]), [spo2(at(hours=9), 85), spo2(at(hours=10), 95)])
    assert [d for d in mixed if isinstance(d, Raise)] == []


@pytest.mark.parametrize("table", list(BANDS))
def test_every_band_cites_its_edge_parameter(table: Any) -> None:
    for spec in BANDS[table]:
        rule = RuleId.SPO2_LOW if "Scale" in table.value else (
            RuleId.PULSE_HIGH if "high" in table.value else RuleId.PULSE_LOW)
        settings = Settings(rule, {"review_at_or_below": 50} if rule == RuleId.PULSE_LOW else {})
        scale, on_oxygen = (2, "oxygen" in table.value) if "Scale 2" in table.value else (1, False)
        found = {b.spec: b for b in bands(rule, settings, scale, on_oxygen)}
        assert found[spec].source == settings.source(spec.edge)
        assert found[spec].priority == (2 if spec.name == BandName.URGENT else 3)


def test_band_of_reads_the_same_table() -> None:
    settings = Settings(RuleId.SPO2_LOW)
    names = {v: getattr(band_of(RuleId.SPO2_LOW, v, settings, 1, False), "name", None) for v in (91, 92, 93, 94, 95)}
    assert names == {91: BandName.URGENT, 92: BandName.URGENT, 93: BandName.REVIEW, 94: BandName.REVIEW, 95: None}
