"""Telling the person that help is coming: the hub follows each alarm until the centre confirms it.

An alarm here is a `DeviceEvent` whose code is in `ALARM_CODES`: the help button of a pendant
or a pull cord (`manual_alarm`) or a detected fall (`fall_detected`). From the moment the hub
commits one, `AlarmConfirmations` waits for the centre's end-to-end ack naming it (see
`hub_agent.uplink`), and signals, through one callback taking an `AlarmNotice`:

- `RECEIVED`: the centre has stored the alarm; what a pendant or hub LED or speaker would use
  to say "your call has been received". Logged at INFO.
- `NOT_CONFIRMED`: no ack within `ALARM_CONFIRM_BOUND_S`. The uplink keeps resending it; the
  hub also sends a `device_fault` about itself (`fault = "alarm_unconfirmed"`), which waits in
  the outbox and reaches the centre once the link returns, so the operator learns that this
  home's alarms were not getting through. Logged at ERROR. `RECEIVED` still follows if the ack
  comes later.
- `REFUSED`: the centre dead-lettered the alarm for good (e.g. `unknown_device`: a pendant the
  centre has not paired); it will not be resent. Logged at ERROR.

Each alarm is signalled `RECEIVED` or `REFUSED` at most once. State is in memory; after a
restart the agent watches again the alarms still waiting in the outbox.

Thread-safe: alarms are watched from the agent's event loop, confirmations arrive on the
uplink's sender thread, and the callback runs on whichever thread caused the notice.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from telecare_protocol import DeviceEvent, Message, codes

log = logging.getLogger(__name__)

ALARM_CODES: Final = codes.ALARM_CODES
"""Events a person raises, or a fall detector raises for them: the calls the centre must confirm
(the protocol's own list, which also puts them on the hub's alarms topic)."""
ALARM_CONFIRM_BOUND_S: Final = 60.0
"""How long the hub waits for the centre to confirm an alarm before it reports a fault. Reason: the
TSA Quality Standards Framework expects 97.5-98.5 % of alarm calls answered within 60 s (the same
figure the centre's escalation uses for its first step, docs/alerting.md); an alarm the centre has not even
stored by then cannot be answered in time, and someone must find out why."""


class AlarmSignal(StrEnum):
    """What the hub can tell the person about their alarm."""

    RECEIVED = "received"
    """The centre has stored it: help is coming."""
    NOT_CONFIRMED = "not_confirmed"
    """No confirmation within `ALARM_CONFIRM_BOUND_S`; the hub keeps trying."""
    REFUSED = "refused"
    """The centre refused it for good (`AlarmNotice.reason` says why)."""


@dataclass(frozen=True)
class AlarmNotice:
    """One signal about one alarm."""

    signal: AlarmSignal
    alarm: DeviceEvent
    after_s: float
    """Seconds from the hub committing the alarm (or, after a restart, finding it in the outbox)."""
    reason: str = ""
    """For `REFUSED`: the centre's dead-letter reason."""


def is_alarm(message: Message) -> bool:
    return message.type == "event" and message.code in ALARM_CODES


@dataclass
class _Watched:
    alarm: DeviceEvent
    since: float
    reported: bool = False
    """`NOT_CONFIRMED` already signalled (and the fault made)."""


class AlarmConfirmations:
    """The alarms waiting for the centre's confirmation, and the signals about them."""

    def __init__(self, notify: Callable[[AlarmNotice], None] = lambda notice: None, *,
                 bound_s: float = ALARM_CONFIRM_BOUND_S, clock: Callable[[], float] = time.monotonic) -> None:
        if bound_s <= 0:
            raise ValueError("the confirmation bound must be positive")
        self.notify = notify
        self.bound_s = bound_s
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[str, _Watched] = {}

    @property
    def waiting(self) -> int:
        """Alarms not yet confirmed or refused."""
        return len(self._waiting)

    def watch(self, message: Message) -> None:
        """Follow this message if it is an alarm (anything else is ignored); idempotent by message id."""
        if is_alarm(message):
            assert message.type == "event"
            with self._lock:
                self._waiting.setdefault(str(message.id), _Watched(message, self._clock()))

    def confirmed(self, stored: Iterable[str], refused: Iterable[tuple[str, str]] = ()) -> None:
        """The centre acknowledged these message ids (stored) or refused them (id, reason)."""
        notices = []
        now = self._clock()
        with self._lock:
            for message_id in stored:
                watched = self._waiting.pop(message_id, None)
                if watched is not None:
                    notices.append(AlarmNotice(AlarmSignal.RECEIVED, watched.alarm, now - watched.since))
            for message_id, reason in refused:
                watched = self._waiting.pop(message_id, None)
                if watched is not None:
                    notices.append(AlarmNotice(AlarmSignal.REFUSED, watched.alarm, now - watched.since, reason))
        for notice in notices:
            self._signal(notice)

    def overdue(self) -> list[AlarmNotice]:
        """Alarms past the bound not yet reported, each returned (and signalled `NOT_CONFIRMED`) once."""
        now = self._clock()
        with self._lock:
            late = [w for w in self._waiting.values() if not w.reported and now - w.since >= self.bound_s]
            for watched in late:
                watched.reported = True
        notices = [AlarmNotice(AlarmSignal.NOT_CONFIRMED, w.alarm, now - w.since) for w in late]
        for notice in notices:
            self._signal(notice)
        return notices

    def next_check_in(self) -> float:
        """Seconds until the next alarm reaches the bound (`bound_s` when none is waiting)."""
        now = self._clock()
        with self._lock:
            deadlines = [w.since + self.bound_s - now for w in self._waiting.values() if not w.reported]
        return max(0.0, min(deadlines, default=self.bound_s))

    def _signal(self, notice: AlarmNotice) -> None:
        alarm = notice.alarm
        if notice.signal is AlarmSignal.RECEIVED:
            log.info("alarm %s (%s from %s) received by the centre after %.2f s: help is coming", alarm.id,
                     alarm.code, alarm.device_id, notice.after_s)
        elif notice.signal is AlarmSignal.REFUSED:
            log.error("alarm %s (%s from %s) refused by the centre: %s", alarm.id, alarm.code, alarm.device_id,
                      notice.reason)
        else:
            log.error("alarm %s (%s from %s) not confirmed by the centre after %.0f s; still trying", alarm.id,
                      alarm.code, alarm.device_id, notice.after_s)
        try:
            self.notify(notice)
        except Exception:
            log.exception("the alarm signal callback failed for %s", notice.signal)
