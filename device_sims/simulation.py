"""Putting a home together and running it: personality, layout, routine, incidents, hub.

`build_home` makes one `HomeSim`; `home_stream` runs it on a `SimClock` and yields the
protocol messages its hub publishes, in time order, one simulated day at a time (so a
fleet of thousands of homes never holds more than a day of each in memory);
`fleet_stream` merges many homes into one stream ordered by time.
"""

import heapq
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from device_sims.clock import SimClock
from device_sims.happenings import Timed
from device_sims.home import DEFAULT_ROLES, Layout, build_layout
from device_sims.incidents import IncidentSpec, Injector, Label
from device_sims.personality import Personality, draw_personality
from device_sims.routine import Plan, Routine
from device_sims.scenario import ScenarioModel
from device_sims.virtual_hub import Item, VirtualHub
from telecare_protocol import Message

DEFAULT_HEARTBEAT_S = 300


@dataclass
class HomeSim:
    layout: Layout
    personality: Personality
    routine: Routine
    plan: Plan
    incident_happenings: list[Timed]
    labels: list[Label]
    seed: str
    timezone: str
    heartbeat_interval_s: int
    spo2_scale: int = 1


def build_home(number: int, *, seed: int, first_day: date, days: int, timezone: str = "Europe/London",
               heartbeat_interval_s: int = DEFAULT_HEARTBEAT_S, personality: Mapping[str, Any] | None = None,
               roles: tuple[str, ...] | None = None, incidents: Iterable[IncidentSpec] = (),
               person_id: str | None = None, hub_id: str | None = None, spo2_scale: int = 1) -> HomeSim:
    """Home `number` of a run seeded `seed`. Everything random about it derives from both."""
    home_seed = f"{seed}/home/{number}"
    drawn = draw_personality(random.Random(f"{home_seed}/personality"))
    who = Personality.model_validate({**drawn.model_dump(), **(personality or {})})
    if roles is None:
        roles = DEFAULT_ROLES + (("oximeter",) if who.has_oximeter else ())
    elif who.has_oximeter and "oximeter" not in roles:
        raise ValueError(f"home {number} measures SpO2 ({who.oximetry}) but has no oximeter device")
    layout = build_layout(number, roles, person_id=person_id, hub_id=hub_id)
    routine = Routine(layout, who, tz=ZoneInfo(timezone), first_day=first_day, days=days, seed=home_seed)
    plan = Plan()
    injector = Injector(routine, plan, random.Random(f"{home_seed}/incidents"))
    labels = [injector.inject(spec) for spec in incidents]
    added = sorted((item for item in injector.added if routine.start <= item[0] < routine.end), key=lambda i: i[0])
    return HomeSim(layout, who, routine, plan, added, labels, home_seed, timezone, heartbeat_interval_s, spo2_scale)


def scenario_homes(scenario: ScenarioModel, seed: int | None = None) -> list[HomeSim]:
    """The homes of a scenario; `seed` overrides the file's."""
    run_seed = scenario.seed if seed is None else seed
    homes = []
    for number, home in enumerate(scenario.home, start=1):
        incidents = [IncidentSpec(kind=i.kind, day=i.day - 1, at=i.at, minutes=i.minutes, device=i.device)
                     for i in home.incident]
        homes.append(build_home(number, seed=run_seed, first_day=scenario.start, days=scenario.days,
                                timezone=scenario.timezone, heartbeat_interval_s=scenario.heartbeat_interval_s,
                                personality=home.personality, roles=home.devices, incidents=incidents,
                                person_id=home.id, hub_id=home.hub_id, spo2_scale=home.spo2_scale))
    return homes


def fleet_homes(count: int, *, seed: int, first_day: date, days: int, timezone: str = "Europe/London",
                heartbeat_interval_s: int = DEFAULT_HEARTBEAT_S) -> list[HomeSim]:
    """`count` homes with seeded personalities and ordinary days (no incidents)."""
    return [build_home(n, seed=seed, first_day=first_day, days=days, timezone=timezone,
                       heartbeat_interval_s=heartbeat_interval_s) for n in range(1, count + 1)]


def home_stream(home: HomeSim) -> Iterator[Message]:
    """The home's hub's messages in publish order, generated a day at a time."""
    routine = home.routine
    clock: SimClock[Item] = SimClock(now=routine.start)
    hub = VirtualHub(home.layout, routine, clock, seed=home.seed, heartbeat_interval_s=home.heartbeat_interval_s)
    clock.schedule_all(home.incident_happenings)
    upcoming = routine.plan_day(0, home.plan)
    for day in range(routine.days):
        clock.schedule_all(upcoming)
        upcoming = routine.plan_day(day + 1, home.plan) if day + 1 < routine.days else []
        # Run up to the next day's first happening, so nothing is scheduled in the clock's past.
        until = upcoming[0][0] - timedelta(microseconds=1) if upcoming else routine.end - timedelta(microseconds=1)
        for at, item in clock.run(until=until):
            yield from hub.handle(at, item)


def home_happenings(home: HomeSim) -> Iterator[Timed]:
    """Everything that happens in the home, in time order (for output to a real hub agent)."""
    days = (home.routine.plan_day(day, home.plan) for day in range(home.routine.days))
    return heapq.merge(home.incident_happenings, *days, key=lambda item: item[0])


def message_time(message: Message) -> datetime:
    assert message.hub_ts is not None
    return message.hub_ts


def fleet_stream(homes: Iterable[HomeSim]) -> Iterator[Message]:
    """All homes' messages merged in time order (ties: home order)."""
    return heapq.merge(*(home_stream(h) for h in homes), key=message_time)


def all_labels(homes: Iterable[HomeSim]) -> list[Label]:
    return sorted((label for home in homes for label in home.labels), key=lambda lb: (lb.start, lb.hub_id))


def fleet_hub_ids(count: int) -> list[str]:
    """The hub ids `fleet_homes(count, …)` uses, for making their broker accounts."""
    return [build_layout(n, ()).hub_id for n in range(1, count + 1)]
