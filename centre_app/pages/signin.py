"""Sign-in and sign-out for the web pages, and `/`: each role to its own landing page.

`POST /signin` goes through the API's own sign-in (`centre_app.api.auth.token`: throttling,
Argon2 off the event loop, every attempt audited) and keeps the token in an HttpOnly,
SameSite=Strict session cookie (`SESSION_COOKIE`), so no script can read it. `POST /signout`
ends every session of the account (`User.session_epoch`) and is audited.
"""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm

from centre_app.api import auth
from centre_app.api.deps import SESSION_COOKIE, Centre, Db, same_site
from centre_app.pages.navigation import landing
from centre_app.pages.rendering import local_path, render, signed_in_or_none
from monitoring_centre import audit

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, session: Db) -> Response:
    """The signed-in account's landing page (`navigation.landing`), or the sign-in page."""
    user = signed_in_or_none(request, session)
    return RedirectResponse(landing(user.role) if user else "/signin", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/signin")
def signin_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, None, "signin.html", title="Sign in", next=local_path(next, ""))


@router.post("/signin")
async def signin(request: Request, centre: Centre, username: Annotated[str, Form(max_length=200)],
                 password: Annotated[str, Form(max_length=1000)], next: Annotated[str, Form()] = "") -> Response:
    """Signs in and redirects (303) to `next` if it is a path of this site, else to the role's
    landing page. A wrong password or a throttled account shows the sign-in page again with
    the API's words (401, 429)."""
    form = OAuth2PasswordRequestForm(username=username, password=password)
    try:
        token = await auth.token(request, form, centre)
    except HTTPException as refusal:
        return render(request, None, "signin.html", title="Sign in", next=local_path(next, ""),
                      error=str(refusal.detail), username=username, status_code=refusal.status_code)
    response = RedirectResponse(local_path(next, landing(token.role)), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(SESSION_COOKIE, token.access_token, max_age=centre.settings.token_ttl_s, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/signout")
def signout(request: Request, session: Db) -> Response:
    """Ends every session of the signed-in account (its tokens of earlier epochs are refused
    from now on), audited as `logout`, and returns to the sign-in page. Only from this centre's
    own pages (`same_site`): another site cannot sign an operator out."""
    response = RedirectResponse("/signin", status_code=status.HTTP_303_SEE_OTHER)
    user = signed_in_or_none(request, session)
    if user is not None and same_site(request):
        user.session_epoch += 1
        audit.record(session, user.username, "logout", [None], "signed out: every session of the account ended")
        session.commit()
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
