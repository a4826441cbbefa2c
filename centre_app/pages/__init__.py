"""The web pages: one per task of each role, server-rendered, sharing one layout and one set of
components (NHS.UK frontend). `install(app)` adds them to the centre's FastAPI app.

- `navigation.py`: each role's menu and landing page;
- `rendering.py`: templates, the signed-in user, the role check, the error page;
- `signin.py`: sign-in, sign-out, `/`;
- one module per role's pages: `operator.py`, `nurse.py`, `person.py` (the person at home and
  family members), `admin.py`.
"""

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from centre_app.pages import admin, nurse, operator, person, signin
from centre_app.pages.rendering import STATIC, SignInNeeded, error_page, sign_in_needed

JSON_PREFIXES = ("/api/", "/fhir/", "/openapi.json", "/metrics", "/health")
"""Paths whose refusals stay JSON (FastAPI's own handler); every other path gets a page."""


async def _refusal(request: Request, problem: Exception) -> Response:
    assert isinstance(problem, HTTPException)
    if request.url.path.startswith(JSON_PREFIXES):
        return await http_exception_handler(request, problem)
    return error_page(request, problem)


def install(app: FastAPI) -> None:
    """The pages' routes, `/static` (the pages' own files and the vendored assets), the
    redirect to sign-in, and refusals shown as pages outside the API."""
    app.include_router(signin.router)
    app.include_router(admin.router)
    app.include_router(operator.router)
    app.include_router(nurse.router)
    app.include_router(person.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(HTTPException, _refusal)
