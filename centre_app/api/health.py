"""`GET /health`: can this centre do its job right now? For a load balancer, a monitoring
system or an administrator's `curl`. No login, and nothing about any person in it.

Four checks, each `{"ok": bool, ...}`:
- `broker`: both of the receiver's sessions are connected (`monitoring_centre.receiver`);
  `connected`, `since` (when that last changed, ISO 8601 UTC) and `address` ("host:port").
- `database`: a `SELECT 1` through the centre's own sessions; `error` names the exception
  class when it fails (the full error goes to the log, not to an anonymous caller).
- `escalator`: the escalation loop finished a pass within `stale_after_s` seconds;
  `last_pass` (ISO 8601 UTC, or null before the first) and `age_s`.
- `storage`: the database takes writes (`monitoring_centre.storage_health`); during a fault it
  is the centre's supervision alert `centre_storage_fault`: `rule`, `title`, `priority` (4),
  `since`, `failures`, `error` ("SQLITE_FULL", "disk_full", …), and `audit_pending`, the audit
  rows waiting in memory. A `SELECT 1` still passes then: reads work, writes do not.

Answers 200 with `{"status": "ok", "checks": {...}}` when all pass, and 503 with
`"status": "failing"` when any fails. An app without `attach()` (a test's bare app) checks
the database and the storage only.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from centre_app.api.deps import centre
from monitoring_centre.receiver import BrokerLink
from monitoring_centre.storage import utc_now

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

ESCALATOR_STALE_AFTER_S = 60.0
"""A pass normally comes every `TELECARE_ALERTING_POLL_S` (1 s); a minute without one means the
loop is stuck or failing on every pass (each failure is logged and counted)."""


@dataclass(frozen=True)
class HealthSources:
    """Where `/health` reads the parts of a running centre that the API does not own."""

    broker: Callable[[], BrokerLink]
    """The receiver's link (`Receiver.broker`)."""
    escalator_last_pass: Callable[[], datetime | None]
    """When the escalation loop last finished a pass (`Escalator.last_pass_at`)."""
    escalator_stale_after_s: float = ESCALATOR_STALE_AFTER_S


def attach(app: FastAPI, sources: HealthSources) -> None:
    """Give an app made by `create_app` the running centre's broker link and escalator."""
    app.state.health = sources


def _database(request: Request) -> dict[str, Any]:
    try:
        with centre(request).sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as problem:  # any failure is the answer; nothing here may raise
        log.warning("health: the database check failed", exc_info=True)
        return {"ok": False, "error": type(problem).__name__}
    return {"ok": True}


def _broker(sources: HealthSources) -> dict[str, Any]:
    link = sources.broker()
    return {"ok": link.connected, "connected": link.connected, "since": link.since.isoformat(),
            "address": f"{link.host}:{link.port}"}


def _escalator(sources: HealthSources) -> dict[str, Any]:
    last = sources.escalator_last_pass()
    age = (utc_now() - last).total_seconds() if last is not None else None
    return {"ok": age is not None and age <= sources.escalator_stale_after_s,
            "last_pass": last.isoformat() if last is not None else None,
            "age_s": round(age, 3) if age is not None else None,
            "stale_after_s": sources.escalator_stale_after_s}


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """200 when the broker, the database, its storage and the escalator are all well, else 503 (see the module)."""
    checks = {"database": _database(request), "storage": centre(request).storage.report()}
    sources: HealthSources | None = getattr(request.app.state, "health", None)
    if sources is not None:
        checks["broker"] = _broker(sources)
        checks["escalator"] = _escalator(sources)
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse({"status": "ok" if ok else "failing", "checks": checks},
                        status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE)
