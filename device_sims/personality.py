"""Who lives in a simulated home: the parameters of their daily routine.

Each home draws its own personality from its seed (an early riser or a night owl, how
often they go out, whether they have COPD and how their oxygen saturation is measured);
a scenario may override any field. Times are local ("HH:MM"), in the home's time zone.
"""

import random
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Oximetry = Literal["none", "spot", "overnight"]

FIRST_NAMES = ("Ada", "Brian", "Cath", "Dilys", "Eric", "Flora", "Gwen", "Harold", "Iris", "Joan", "Ken", "Lena",
               "Maud", "Norman", "Olive", "Percy", "Rita", "Stan", "Thelma", "Vera", "Walter", "Yvonne")

SPOT_CHECK_TIMES = ("09:00", "14:00", "20:00")
"""NHS oximetry@home asks for readings about three times a day (docs/scenarios.md)."""


def parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a local time HH:MM") from None


class Personality(BaseModel):
    """One resident's routine. Scatter fields are standard deviations in minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "Resident"
    wake_time: str = "07:00"
    bed_time: str = "22:30"
    time_scatter_min: float = Field(default=20.0, ge=0, le=120)
    """Day-to-day scatter of wake, bed and meal times."""
    night_toilet_visits: float = Field(default=0.8, ge=0, le=2)
    """Mean night toilet visits (each night has 0, 1 or 2)."""
    day_toilet_visits: int = Field(default=5, ge=0, le=12)
    outings_per_week: float = Field(default=3.0, ge=0, le=14)
    visitor_days_per_week: float = Field(default=2.0, ge=0, le=7)
    pendant_worn: bool = True
    """A worn pendant leaves the house with its wearer (the hub stops hearing it)."""
    condition: Literal["none", "copd"] = "none"
    oximetry: Oximetry = "none"
    """"spot": spot checks at `spot_check_times`; "overnight": a continuous oximeter in bed."""
    spot_check_times: tuple[str, ...] = SPOT_CHECK_TIMES
    spo2_baseline: float = Field(default=97.0, ge=90, le=100)
    pulse_baseline: float = Field(default=70.0, ge=45, le=100)
    overnight_period_s: int = Field(default=120, ge=1, le=3600)
    """How often the overnight oximeter's readings reach the hub."""

    @field_validator("wake_time", "bed_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @field_validator("spot_check_times")
    @classmethod
    def _hhmm_all(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parse_hhmm(item)
        return value

    def wake(self) -> time:
        return parse_hhmm(self.wake_time)

    def bed(self) -> time:
        return parse_hhmm(self.bed_time)

    def spot_times(self) -> tuple[time, ...]:
        return tuple(parse_hhmm(t) for t in self.spot_check_times)

    @property
    def has_oximeter(self) -> bool:
        return self.oximetry != "none"


def draw_personality(rng: random.Random) -> Personality:
    """A plausible resident: chronotype, sociability and health drawn from `rng`."""
    chronotype = rng.choice(("early", "usual", "usual", "late"))
    wake = {"early": 6 * 60, "usual": 7 * 60 + 15, "late": 8 * 60 + 30}[chronotype] + rng.randint(-20, 20)
    bed = {"early": 21 * 60 + 30, "usual": 22 * 60 + 45, "late": 23 * 60 + 50}[chronotype] + rng.randint(-20, 20)
    copd = rng.random() < 0.3
    oximetry: Oximetry = rng.choice(("spot", "spot", "overnight")) if copd else "none"
    return Personality(
        name=rng.choice(FIRST_NAMES),
        wake_time=f"{wake // 60:02d}:{wake % 60:02d}",
        bed_time=f"{bed // 60 % 24:02d}:{bed % 60:02d}",
        time_scatter_min=round(rng.uniform(10, 30), 1),
        night_toilet_visits=round(rng.uniform(0.2, 1.4), 2),
        day_toilet_visits=rng.randint(4, 7),
        outings_per_week=round(rng.uniform(1, 7), 1),
        visitor_days_per_week=round(rng.uniform(0, 4), 1),
        pendant_worn=rng.random() < 0.8,
        condition="copd" if copd else "none",
        oximetry=oximetry,
        spo2_baseline=round(rng.uniform(95.8, 96.8) if copd else rng.uniform(96.5, 98.0), 1),
        pulse_baseline=round(rng.uniform(62, 80), 1),
    )
