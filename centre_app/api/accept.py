"""The page a responder's accept link opens: "can you go?", then how to get in.

No account is needed: the link's token is the responder's credential for this one alarm.
Opening the link changes nothing (mail scanners open links); the button does.
"""

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from alerting import acceptance
from centre_app.api.deps import Centre, Db
from monitoring_centre import audit
from monitoring_centre.storage import Alert, Person, utc_now

router = APIRouter(prefix="/accept", include_in_schema=False)


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><body style='font-family:sans-serif;max-width:36em;margin:2em auto'>"
        f"<h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status_code, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/{token}")
def offer(token: str, session: Db) -> HTMLResponse:
    try:
        notification = acceptance.offer(session, token)
    except acceptance.AcceptRefused as refused:
        return _page("Link not valid", f"<p>{escape(str(refused))}</p>", 404)
    alert = session.get(Alert, notification.alert_id)
    person = session.get(Person, alert.person_id) if alert else None
    if alert is None or person is None:
        return _page("Link not valid", "<p>this link is not valid</p>", 404)
    audit.record(session, f"responder:{notification.responder_id}:{notification.responder_name}",
                 "open_accept_link", [person.id], f"alert {alert.id}")
    session.commit()
    return _page(f"{alert.title}: {person.name}",
                 f"<p>{escape(notification.responder_name)}, can you go to {escape(person.name)} now?</p>"
                 "<form method=post><button type=submit style='font-size:1.4em'>Yes, I am going</button></form>"
                 "<p>If you cannot, do nothing: the centre will call the next person.</p>")


@router.post("/{token}")
def accept(token: str, session: Db, centre: Centre) -> HTMLResponse:
    try:
        accepted = acceptance.accept(session, token, utc_now())
    except acceptance.AcceptRefused as refused:
        session.commit()
        return _page("Thank you", f"<p>{escape(str(refused))}</p>", 409)
    session.commit()
    centre.alerts_changed({accepted.alert.id})
    person = accepted.person
    access = escape(person.access_details) if person.access_details else "none recorded: call the centre"
    return _page(f"Thank you, {accepted.responder_name}",
                 f"<p>The centre knows you are going to <b>{escape(person.name)}</b>.</p>"
                 f"<p>Address: <b id=address>{escape(person.address)}</b></p>"
                 f"<p>How to get in: <b id=access>{access}</b></p>")
