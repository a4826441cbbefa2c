"""The FastAPI application: routers, the console's static files, and /metrics."""

from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from centre_app.api import accept, alerts, auth, consent, escalations, health, patients, person_settings, responders
from centre_app.api.deps import CentreState

CONSOLE = Path(__file__).parent.parent / "console"


def create_app(state: CentreState) -> FastAPI:
    app = FastAPI(title="Telecare monitoring centre", version="0.1.0", openapi_url="/openapi.json")
    app.state.centre = state
    app.include_router(auth.router)
    app.include_router(patients.router)
    app.include_router(alerts.router)
    app.include_router(escalations.router)
    app.include_router(responders.router)
    app.include_router(consent.router)
    app.include_router(person_settings.router)
    app.include_router(accept.router)
    app.include_router(health.router)
    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(CONSOLE / "index.html")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)

    return app
