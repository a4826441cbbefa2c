"""The demo home's last 30 days, made by the resident simulator (`device_sims.simulation`).

Margaret has COPD and checks her SpO2 and pulse four times a day on the oximeter; she goes to
bed and gets up each day and goes out through the front door now and then; her SpO2 drifts down
over the last three days (`spo2_slow_decline`), which the centre's trend rules notice. The
messages are those her hub would have published, with the demo home's own device ids
(`device_sims.demo_day.DEMO_DEVICES`), so the centre takes them as from the demo's hub.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from device_sims.demo_day import BED, DEMO_HUB_ID, FRONT_DOOR, OXIMETER, PENDANT
from device_sims.routine import Decline
from device_sims.simulation import build_home, home_stream
from telecare_protocol import Message
from telecare_protocol.messages import Heartbeat

HISTORY_DAYS = 30
DECLINE_DAYS = 3
"""SpO2 drifts down over the last this many whole days of the history (and stays down today)."""
DROP_PER_DAY = 1.5
"""How fast her daily mean SpO2 falls over those days (percentage points a day)."""
HEARTBEAT_S = 3600
"""The history's hub heartbeat: enough to show the hub was online, few enough to seed quickly."""
ROLE_DEVICES = {"front_door": FRONT_DOOR.device_id, "bed": BED.device_id, "pendant": PENDANT.device_id,
                "oximeter": OXIMETER.device_id}
"""The simulator's device roles and the demo home's device ids for them."""
MARGARET = {"name": "Margaret", "condition": "copd", "oximetry": "spot", "spo2_baseline": 97.0,
            "spot_check_times": ("08:30", "12:30", "16:30", "20:30"), "pulse_baseline": 74.0,
            "wake_time": "07:30", "bed_time": "22:30", "outings_per_week": 3.0}


def history(until: datetime, timezone: str, *, days: int = HISTORY_DAYS, seed: int = 1941) -> Iterator[Message]:
    """The demo hub's messages over the `days` local days before `until`'s and that day up to `until`,
    in time order: the home is not silent between the history and the live day."""
    today = until.astimezone(ZoneInfo(timezone)).date()
    home = build_home(1, seed=seed, first_day=today - timedelta(days=days), days=days + 1, timezone=timezone,
                      roles=tuple(ROLE_DEVICES), personality=MARGARET, hub_id=DEMO_HUB_ID,
                      heartbeat_interval_s=HEARTBEAT_S)
    end = home.routine.end  # the end of today; her SpO2 stays down after the decline, as it would
    start = end - timedelta(days=1 + DECLINE_DAYS)
    home.plan.declines.append(Decline(start, DECLINE_DAYS, DROP_PER_DAY, end))
    ids = {device.device_id: ROLE_DEVICES[device.role] for device in home.layout.devices}
    for message in home_stream(home):
        if message.hub_ts is None or message.hub_ts >= until:
            return
        if isinstance(message, Heartbeat):
            yield message.model_copy(update={"devices": tuple(
                status.model_copy(update={"device_id": ids.get(status.device_id, status.device_id)})
                for status in message.devices)})
        else:
            yield message.model_copy(update={"device_id": ids.get(message.device_id, message.device_id)})
