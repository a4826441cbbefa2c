"""Inhibition: one alert that explains others mutes their notifications.

"Hub offline" means nothing in the home can be heard from, so the per-device "not heard
from", battery and tamper alerts of that home add nothing but noise (Alertmanager's
inhibition; peers.md). The muted alerts stay on the queue, marked; only their
notifications wait, and they resume if the muting alert clears while they are still open.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from detection.rules import PER_DEVICE, RuleId
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.storage import Alert

MUTES: dict[RuleId, frozenset[RuleId]] = {
    RuleId.HUB_OFFLINE: PER_DEVICE,
}
"""Rule of the muting alert → rules it mutes, in the same home (same hub): an offline hub mutes
every per-device rule of the catalogue (device not seen, battery low, tamper, device fault)."""


def inhibitor(session: Session, alert: Alert) -> Alert | None:
    """The active alert that mutes `alert`, if any."""
    muting_rules = [rule for rule, muted in MUTES.items() if alert.rule in muted]
    if not muting_rules:
        return None
    return session.scalar(
        select(Alert).where(Alert.hub_id == alert.hub_id, Alert.rule.in_(muting_rules), Alert.status.in_(ACTIVE),
                            Alert.id != alert.id).order_by(Alert.id)
    )
