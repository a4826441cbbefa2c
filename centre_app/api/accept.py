"""The page a responder's accept link opens: "can you go?", then how to get in.

No account is needed: the link's token is the responder's credential for this one alarm,
for one acceptance (`alerting.acceptance`). Opening the link changes nothing (mail scanners
open links); the button does. What each state shows, and its status code:

| state | GET (the link opened) | POST (the button) |
|---|---|---|
| the alarm needs someone | 200 "can you go to <name> now?" and the button | 200 the address and the way in |
| another responder accepted | 200 "someone else is already going" | 409 the same |
| this responder accepted already | 409 "you have already accepted", no details | 409 the same (a replay) |
| the alarm was resolved or closed | 410 "this link has expired", no name | 410 the same |
| no such link | 404 "this link is not valid" | 404 the same |

Every opening of a real link is in the audit log ("open_accept_link", with its state), and so
is every refusal of the button ("accept_refused") and every showing of the way in.
"""

import base64
import hashlib
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from alerting import acceptance
from alerting.acceptance import Refusal
from centre_app.api.deps import Centre, Db
from monitoring_centre import audit
from monitoring_centre.storage import utc_now

router = APIRouter(prefix="/accept", include_in_schema=False)

STATUS = {Refusal.NOT_VALID: 404, Refusal.EXPIRED: 410, Refusal.ALREADY_ACCEPTED: 409, Refusal.TAKEN: 409}
"""The status code of each refusal (404 no such link, 410 gone: the alarm is over, 409 conflict)."""
TITLES = {Refusal.NOT_VALID: "Link not valid", Refusal.EXPIRED: "Link expired",
          Refusal.ALREADY_ACCEPTED: "Already accepted", Refusal.TAKEN: "Thank you"}


STYLE = "body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}button{font-size:1.4em}"
"""The page's only style, allowed by its hash in the page's own Content-Security-Policy (no inline
`style=` attributes, which the centre's policy refuses)."""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
POLICY = f"default-src 'self'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; form-action 'self'"


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status_code, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                          "Content-Security-Policy": POLICY},
    )


def _refused(refusal: Refusal) -> HTMLResponse:
    """The page for a link that does not accept: what happened, in words, and nothing about the person."""
    message = acceptance.MESSAGES[refusal]
    return _page(TITLES[refusal], f"<p>{escape(message[:1].upper() + message[1:])}.</p>", STATUS[refusal])


@router.get("/{token}")
def offer(token: str, session: Db) -> HTMLResponse:
    try:
        found = acceptance.offer(session, token)
    except acceptance.AcceptRefused as refused:
        return _refused(refused.refusal)
    refusal = found.refusal
    audit.record(session, found.actor, "open_accept_link", [found.person.id],
                 f"alert {found.alert.id}" + (f": {refusal}" if refusal is not None else ""))
    session.commit()
    if refusal == Refusal.TAKEN:
        return _page("Thank you", f"<p>Someone else is already on the way to {escape(found.person.name)}. "
                                  "Thank you: nothing more is needed from you.</p>")
    if refusal is not None:
        return _refused(refusal)
    return _page(f"{found.alert.title}: {found.person.name}",
                 f"<p>{escape(found.notification.responder_name)}, can you go to {escape(found.person.name)} now?</p>"
                 "<form method=post><button type=submit>Yes, I am going</button></form>"
                 "<p>If you cannot, do nothing: the centre will call the next person.</p>")


@router.post("/{token}")
def accept(token: str, session: Db, centre: Centre) -> HTMLResponse:
    try:
        accepted = acceptance.accept(session, token, utc_now())
    except acceptance.AcceptRefused as refused:
        session.commit()  # the refusal's audit row
        return _refused(refused.refusal)
    session.commit()
    centre.alerts_changed({accepted.alert.id})
    person = accepted.person
    access = escape(person.access_details) if person.access_details else "none recorded: call the centre"
    return _page(f"Thank you, {accepted.responder_name}",
                 f"<p>The centre knows you are going to <b>{escape(person.name)}</b>.</p>"
                 f"<p>Address: <b id=address>{escape(person.address)}</b></p>"
                 f"<p>How to get in: <b id=access>{access}</b></p>")
