"""NEWS2 sub-scores of the two parameters a home pulse oximeter measures: SpO2 and pulse.

The National Early Warning Score 2 (Royal College of Physicians, 2017) scores each vital sign
0 (normal) to 3; a single parameter scoring 3 calls for an urgent review within the hour. Only
these two of its seven parameters are measured at home, so no aggregate NEWS2 is made here:
each sub-score stands alone, as in the tables below (domain brief, "Clinical thresholds").

| SpO2 Scale 1 | score |   | SpO2 Scale 2 (88-92 % target)    | score |   | pulse /min | score |
|---|---|---|---|---|---|---|---|
| <= 91        | 3     |   | <= 83                            | 3     |   | <= 40      | 3     |
| 92-93        | 2     |   | 84-85                            | 2     |   | 41-50      | 1     |
| 94-95        | 1     |   | 86-87                            | 1     |   | 51-90      | 0     |
| >= 96        | 0     |   | 88-92; >= 93 on air              | 0     |   | 91-110     | 1     |
|              |       |   | on oxygen: 93-94 / 95-96 / >= 97 | 1/2/3 |   | 111-130    | 2     |
|              |       |   |                                  |       |   | >= 131     | 3     |

Scale 2 is only for a person with a clinician-documented 88-92 % target (e.g. hypercapnic COPD).
A value is scored as an oximeter displays it (`thresholds.displayed`: rounded half up). These
are NEWS2's own bands, whatever a person's alert thresholds are (`defaults.py`): the alert rules
decide when to call someone; these say how far from normal a reading is. Pure functions: the
caller chooses which reading (a clean one: no quality flag, `docs/detection.md`).
"""

from dataclasses import dataclass
from typing import Literal

from detection.rules import NEWS2
from detection.thresholds import displayed

SOURCE = NEWS2

Band = tuple[int, int, int]
"""(lowest, highest, score): a value from lowest to highest (displayed, inclusive) scores this."""

SPO2_SCALE1: tuple[Band, ...] = ((0, 91, 3), (92, 93, 2), (94, 95, 1), (96, 100, 0))
SPO2_SCALE2_ON_AIR: tuple[Band, ...] = ((0, 83, 3), (84, 85, 2), (86, 87, 1), (88, 100, 0))
SPO2_SCALE2_ON_OXYGEN: tuple[Band, ...] = ((0, 83, 3), (84, 85, 2), (86, 87, 1), (88, 92, 0), (93, 94, 1),
                                           (95, 96, 2), (97, 100, 3))
PULSE: tuple[Band, ...] = ((0, 40, 3), (41, 50, 1), (51, 90, 0), (91, 110, 1), (111, 130, 2), (131, 300, 3))


@dataclass(frozen=True)
class SubScore:
    """One parameter's NEWS2 score: `score` 0-3 for the `value` as displayed (% or /min), the band
    it fell in ("92-93", "<= 40", ">= 131") and the table used ("SpO2 Scale 1", "pulse")."""

    score: int
    value: int
    band: str
    table: str


def _score(value: float, bands: tuple[Band, ...], table: str) -> SubScore:
    shown = displayed(value)
    last = len(bands) - 1
    for index, (low, high, score) in enumerate(bands):
        if low <= shown <= high or (index == last and shown > high) or (index == 0 and shown < low):
            text = f"<= {high}" if index == 0 else f">= {low}" if index == last else f"{low}-{high}"
            return SubScore(score, shown, text, table)
    raise AssertionError("NEWS2 bands cover every value")  # pragma: no cover (the tables are contiguous)


def spo2_score(value: float, scale: Literal[1, 2] = 1, on_oxygen: bool = False) -> SubScore:
    """The NEWS2 score of an SpO2 reading (%) on `scale` 1 or 2; `on_oxygen` counts on Scale 2 only
    (high saturations on oxygen score there). Raises ValueError for another scale."""
    if scale == 1:
        return _score(value, SPO2_SCALE1, "SpO2 Scale 1")
    if scale == 2:
        if on_oxygen:
            return _score(value, SPO2_SCALE2_ON_OXYGEN, "SpO2 Scale 2, on oxygen")
        return _score(value, SPO2_SCALE2_ON_AIR, "SpO2 Scale 2")
    raise ValueError(f"NEWS2 has SpO2 scales 1 and 2, not {scale!r}")


def pulse_score(value: float) -> SubScore:
    """The NEWS2 score of a pulse rate (/min)."""
    return _score(value, PULSE, "pulse")
