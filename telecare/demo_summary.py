"""What `telecare demo` prints when it stops: what the centre raised, what was still waiting, and how
to look again.

Only what happened before the demo was asked to stop counts (`before`): the hub going offline as
the demo shuts down is not the demo's day. Alerts opened before the live day began (`started`)
came from Margaret's seeded history (`telecare.demo_history`).
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.tables import Notification
from monitoring_centre.alerts import ACTIVE, AlertState
from monitoring_centre.review_tasks import TASK_RULES
from monitoring_centre.storage import Alert, Responder

KEYHOLDER_ROLE = "keyholder"
SENT = "sent"


def summary_lines(session: Session, *, started: datetime, before: datetime, data_dir: Path) -> list[str]:
    """The closing summary, one line per fact."""
    alerts = session.scalars(select(Alert).where(Alert.opened_at < before).order_by(Alert.opened_at)).all()
    live = [alert for alert in alerts if alert.opened_at >= started]
    history = [alert for alert in alerts if alert.opened_at < started]
    waiting = [alert for alert in alerts if alert.status in ACTIVE]
    unanswered = [alert for alert in waiting if alert.status == AlertState.OPEN and alert.rule not in TASK_RULES]
    unreviewed = [alert for alert in waiting if alert.rule in TASK_RULES]
    messages = session.scalars(
        select(Notification).join(Responder, Responder.id == Notification.responder_id)
        .where(Responder.role == KEYHOLDER_ROLE, Notification.status == SENT, Notification.sent_at.is_not(None),
               Notification.sent_at < before)).all()
    keyholders = sorted({message.responder_name for message in messages})
    return [
        "Alerts in the centre: " + (_by_title(alerts) or "none"),
        "  raised while the demo ran: " + (_by_title(live) or "none"),
        "  from Margaret's 30 days of history: " + (_by_title(history) or "none"),
        f"  still open at the stop: {len(waiting)}" + (f" ({_by_title(waiting)})" if waiting else ""),
        f"  calls never answered (no operator acknowledged them): {len(unanswered)}"
        + (f" ({_by_title(unanswered)})" if unanswered else ""),
        f"  review tasks waiting for the nurse: {len(unreviewed)}"
        + (f" ({_by_title(unreviewed)})" if unreviewed else ""),
        f"  keyholder messages sent: {len(messages)}" + (f" (to {', '.join(keyholders)}; kept in "
                                                         f"{data_dir / 'outbox'})" if messages else ""),
        f"  to look again: run the demo with --keep-data (and the same --data-dir {data_dir}): "
        "the alerts, notes and history above are kept",
    ]


def _by_title(alerts: Iterable[Alert]) -> str:
    counts = Counter(alert.title for alert in alerts)
    return "; ".join(f"{title} x{count}" for title, count in sorted(counts.items()))
