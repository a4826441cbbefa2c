"""The FastAPI application: routers, the web pages (`centre_app.pages`), /docs and /metrics, and
the security headers on every response.

Centres run on closed networks: /docs is Swagger UI from its own package (`swagger_ui_bundle`),
never a CDN; ReDoc, which has none, is off. /metrics answers only clients in
`settings.metrics_allow` (loopback by default), 403 to others.

A value the database refuses to store (PostgreSQL: a NUL character in text) is the request's
fault: a 422 in the validation-error shape (`database_refused`), not a 500.
"""

import base64
import hashlib
import logging
import re
from ipaddress import ip_address
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DataError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from centre_app import pages
from centre_app.api import (
    accept,
    alerts,
    auth,
    call_scripts,
    calls,
    caseloads,
    consent,
    escalations,
    family,
    frailty,
    handover,
    health,
    nurse,
    patients,
    person_settings,
    responders,
    review_tasks,
)
from centre_app.api.deps import CentreState
from centre_app.api.devices import router as devices_router
from centre_app.api.homes import router as homes_router
from centre_app.api.kpis import router as kpis_router
from centre_app.api.users import router as users_router
from centre_app.fhir_gateway.router import router as fhir_gateway_router

log = logging.getLogger(__name__)
SWAGGER_UI = Path(str(swagger_ui_bundle.swagger_ui_path))
DOCS_ASSETS = "/docs/assets"

CONTENT_SECURITY_POLICY = ("default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
"""Only this centre's own scripts, styles, images and connections; no page of it in a frame."""
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors, for browsers that predate it
    "referrer-policy": "no-referrer",
}
PUBLIC_FILES = ("/static/", "/docs/assets/")
"""The only answers that hold no person's data: the pages' own files. Every other answer (the
API, the pages) may, and carries `Cache-Control: no-store`."""


class SecurityHeaders:
    """ASGI middleware: `SECURITY_HEADERS` on every HTTP response, and `Cache-Control: no-store` on
    every one but `PUBLIC_FILES`. A header the response set itself is kept (/docs sets its own
    Content-Security-Policy, with its one inline script's hash)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(SECURITY_HEADERS)
        if not str(scope["path"]).startswith(PUBLIC_FILES):
            extra["cache-control"] = "no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def swagger_page(openapi_url: str, title: str) -> HTMLResponse:
    """FastAPI's Swagger UI page with its files from `DOCS_ASSETS` and no online validator, and a
    Content-Security-Policy that allows its one inline script by hash (and the `data:` images of
    Swagger UI's style sheet)."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title,
                               swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                               swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
                               swagger_ui_parameters={"validatorUrl": None})
    html = bytes(page.body).decode()
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
                      for script in re.findall(r"<script>(.*?)</script>", html, re.DOTALL))
    policy = f"{CONTENT_SECURITY_POLICY}; script-src 'self' {hashes}; img-src 'self' data:"
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})


async def database_refused(request: Request, problem: Exception) -> JSONResponse:
    """A `DataError`: the database refused a value the request carried (a NUL character in text
    on PostgreSQL, which SQLite stores). 422 `{"detail": [{"loc": [], "msg": "...", "type":
    "value_error"}]}` with the database's one-line reason; logged, with the request's route, in
    case the value was the centre's own making."""
    reason = str(getattr(problem, "orig", problem)).splitlines()[0] if str(problem) else "refused"
    log.warning("%s %s: the database refused a value: %s", request.method, request.url.path, reason)
    return JSONResponse({"detail": [{"type": "value_error", "loc": [],
                                     "msg": f"a value in the request cannot be stored: {reason}"}]},
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def may_read_metrics(request: Request, state: CentreState) -> bool:
    """Whether the client's address is in `settings.metrics_allow` (an IPv4 address seen as
    IPv6, `::ffff:a.b.c.d`, counts as itself). A client without an IP address may not."""
    try:
        address = ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in state.settings.metrics_allow)


def create_app(state: CentreState) -> FastAPI:
    app = FastAPI(title="Telecare monitoring centre", version="0.1.0", openapi_url="/openapi.json",
                  docs_url=None, redoc_url=None)
    app.state.centre = state
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(DataError, database_refused)
    app.include_router(auth.router)
    app.include_router(patients.router)
    app.include_router(alerts.router)
    app.include_router(calls.router)
    app.include_router(handover.router)
    app.include_router(call_scripts.router)
    app.include_router(escalations.router)
    app.include_router(responders.router)
    app.include_router(consent.router)
    app.include_router(person_settings.router)
    app.include_router(frailty.router)
    app.include_router(caseloads.router)
    app.include_router(nurse.router)
    app.include_router(review_tasks.router)
    app.include_router(family.router)
    app.include_router(accept.router)
    app.include_router(health.router)
    app.include_router(kpis_router)
    app.include_router(users_router)
    app.include_router(homes_router)
    app.include_router(devices_router)
    app.include_router(fhir_gateway_router)
    pages.install(app)
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    docs_page = swagger_page("/openapi.json", f"{app.title}: API")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return docs_page

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if not may_read_metrics(request, state):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "metrics are not served to this address")
        return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)

    return app
