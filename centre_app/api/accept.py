"""The page a responder's accept link opens: "can you go?", what to do, then how to get in.

No account is needed: the link's token is the responder's credential for this one alarm,
for one acceptance (`alerting.acceptance`). Opening the link changes nothing (mail scanners
open links); the buttons do. What each state shows, and its status code:

| state | GET (the link opened) | POST (yes, I am going) |
|---|---|---|
| the alarm needs someone | 200 "can you go to <name> now?", yes and no | 200 the address and the way in |
| another responder accepted | 200 "someone else is already going" | 409 the same |
| this responder accepted already | 409 "you have already accepted", no details | 409 the same (a replay) |
| the alarm was resolved or closed | 410 "this link has expired", no name | 410 the same |
| no such link | 404 "this link is not valid" | 404 the same |

"No, I cannot go" (`POST /accept/{token}/decline`) is audited ("decline_accept_link") and
marks the message declined; when everyone told at the chain's latest step has said no, the
next step is sent at once instead of after the step's wait (`alerting.escalation.declined`),
and the operators see who said no in the escalation log. A refused link answers as above.

Every page is in the NHS.UK layout (`centre_app/pages`, signed out: no menu, no account),
works on a phone 390 px wide, and gives the centre's phone number (`settings.centre_phone`)
and when to call 999. Every opening of a real link is in the audit log ("open_accept_link",
with its state), and so is every refusal of the button ("accept_refused") and every showing
of the way in. The page's own Content-Security-Policy allows the centre's files and its one
small `<style>` by hash (`STYLE`); no inline `style=` attribute, no inline script.
"""

import base64
import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from alerting import acceptance, escalation
from alerting.acceptance import Refusal
from centre_app.api.deps import Centre, Db
from centre_app.pages.rendering import render
from monitoring_centre import audit
from monitoring_centre.storage import utc_now

router = APIRouter(prefix="/accept", include_in_schema=False)

STATUS = {Refusal.NOT_VALID: 404, Refusal.EXPIRED: 410, Refusal.ALREADY_ACCEPTED: 409, Refusal.TAKEN: 409}
"""The status code of each refusal (404 no such link, 410 gone: the alarm is over, 409 conflict)."""
TITLES = {Refusal.NOT_VALID: "Link not valid", Refusal.EXPIRED: "Link expired",
          Refusal.ALREADY_ACCEPTED: "Already accepted", Refusal.TAKEN: "Thank you"}

STYLE = ".telecare-accept .nhsuk-button{width:100%;margin-bottom:16px}"
"""The page's only inline style (full-width buttons, easy to press on a phone), allowed by its hash
in the page's own Content-Security-Policy; everything else is NHS.UK frontend's style sheet."""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
POLICY = (f"default-src 'self'; style-src 'sha256-{_STYLE_HASH}' 'self'; base-uri 'none'; object-src 'none'; "
          "frame-ancestors 'none'; form-action 'self'")
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Content-Security-Policy": POLICY}


def _page(request: Request, centre: Centre, title: str, state: str, status_code: int = 200,
          **context: object) -> HTMLResponse:
    """The accept page in state `state` (offer, accepted, declined, taken, refused)."""
    response = render(request, None, "accept.html", title=title, status_code=status_code, state=state,
                      style=STYLE, centre_phone=centre.settings.centre_phone, **context)
    response.headers.update(HEADERS)
    return response


def _refused(request: Request, centre: Centre, refusal: Refusal) -> HTMLResponse:
    """The page for a link that does not accept: what happened, in words, and nothing about the person."""
    message = acceptance.MESSAGES[refusal]
    return _page(request, centre, TITLES[refusal], "refused", STATUS[refusal],
                 message=message[:1].upper() + message[1:] + ".")


@router.get("/{token}")
def offer(request: Request, token: str, session: Db, centre: Centre) -> HTMLResponse:
    try:
        found = acceptance.offer(session, token)
    except acceptance.AcceptRefused as refused:
        return _refused(request, centre, refused.refusal)
    refusal = found.refusal
    audit.record(session, found.actor, "open_accept_link", [found.person.id],
                 f"alert {found.alert.id}" + (f": {refusal}" if refusal is not None else ""))
    session.commit()
    if refusal == Refusal.TAKEN:
        return _page(request, centre, "Thank you", "taken", person_name=found.person.name)
    if refusal is not None:
        return _refused(request, centre, refusal)
    return _page(request, centre, f"{found.alert.title}: {found.person.name}", "offer",
                 responder_name=found.notification.responder_name, person_name=found.person.name,
                 alert_title=found.alert.title)


@router.post("/{token}")
def accept(request: Request, token: str, session: Db, centre: Centre) -> HTMLResponse:
    try:
        accepted = acceptance.accept(session, token, utc_now())
    except acceptance.AcceptRefused as refused:
        session.commit()  # the refusal's audit row
        return _refused(request, centre, refused.refusal)
    session.commit()
    centre.alerts_changed({accepted.alert.id})
    person = accepted.person
    return _page(request, centre, f"Thank you, {accepted.responder_name}", "accepted", person_name=person.name,
                 address=person.address, access=person.access_details or "")


@router.post("/{token}/decline")
def decline(request: Request, token: str, session: Db, centre: Centre) -> HTMLResponse:
    """"No, I cannot go": recorded, and the escalation asks the next contact now (see the module docstring)."""
    try:
        found = acceptance.offer(session, token)
    except acceptance.AcceptRefused as refused:
        return _refused(request, centre, refused.refusal)
    refusal = found.refusal
    if refusal is not None and refusal != Refusal.TAKEN:
        return _refused(request, centre, refusal)
    brought_forward = refusal is None and escalation.declined(session, found.notification, utc_now())
    audit.record(session, found.actor, "decline_accept_link", [found.person.id],
                 f"alert {found.alert.id}" + ("; the next contact is asked now" if brought_forward else ""))
    session.commit()
    return _page(request, centre, "Thank you for letting us know", "declined", person_name=found.person.name)
