"""NEWS2 sub-scores of SpO2 (both scales) and pulse, at every band's edges (RCP 2017 tables), and their
agreement with the threshold rules' alert bands."""

import pytest

from detection import news2
from detection.defaults import Settings
from detection.rules import RuleId
from detection.thresholds import BandName, band_of


@pytest.mark.parametrize(("value", "score", "band"), [
    (91, 3, "<= 91"), (50, 3, "<= 91"), (92, 2, "92-93"), (93.4, 2, "92-93"), (93.5, 1, "94-95"),
    (95, 1, "94-95"), (96, 0, ">= 96"), (100, 0, ">= 96"),
])
def test_spo2_scale_1(value: float, score: int, band: str) -> None:
    scored = news2.spo2_score(value)
    assert (scored.score, scored.band, scored.table) == (score, band, "SpO2 Scale 1")


@pytest.mark.parametrize(("value", "on_oxygen", "score"), [
    (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1), (88, False, 0), (92, False, 0),
    (93, False, 0), (99, False, 0),  # on air, high saturations score nothing
    (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3), (100, True, 3),
    (83, True, 3),
])
def test_spo2_scale_2(value: float, on_oxygen: bool, score: int) -> None:
    assert news2.spo2_score(value, 2, on_oxygen).score == score


def test_on_oxygen_counts_on_scale_2_only() -> None:
    assert news2.spo2_score(97, 1, on_oxygen=True).score == 0


@pytest.mark.parametrize(("value", "score"), [
    (30, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3), (220, 3),
])
def test_pulse(value: float, score: int) -> None:
    assert news2.pulse_score(value).score == score


def test_an_unknown_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="scales 1 and 2"):
        news2.spo2_score(95, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rule", "scale", "on_oxygen", "values"), [
    ("spo2_low", 1, False, range(50, 101)), ("spo2_low", 2, False, range(50, 101)),
    ("spo2_low", 2, True, range(50, 101)), ("pulse_high", 1, False, range(20, 251)),
    ("pulse_low", 1, False, range(20, 251)),
])
def test_the_default_alert_bands_agree_with_the_sub_scores(rule: str, scale: int, on_oxygen: bool,
                                                           values: range) -> None:
    """With the cited defaults, a value in an urgent alert band scores at least 2 (NEWS2 3, or Scale 1's
    92 %, which oximetry @home sends to 999), one in a review band at least 1, and one scoring 3 is always
    in an urgent band: the caseload's points and the alerts never tell a nurse opposite things."""
    settings = Settings(RuleId(rule))
    for value in values:
        band = band_of(RuleId(rule), value, settings, scale, on_oxygen)
        score = (news2.spo2_score(value, 2 if scale == 2 else 1, on_oxygen) if rule == "spo2_low"
                 else news2.pulse_score(value)).score
        if (rule == "pulse_high" and value <= 90) or (rule == "pulse_low" and value >= 91):
            continue  # the other pulse rule's side
        if band is not None:
            assert score >= (2 if band.name == BandName.URGENT else 1), (rule, value, band.name, score)
        if score == 3:
            assert band is not None and band.name == BandName.URGENT, (rule, value)
