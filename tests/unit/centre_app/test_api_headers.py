"""Security headers on every response, /docs with nothing from outside the centre (centres run on
closed networks), and /metrics only for the networks in `metrics_allow`."""

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.api_world import ADMIN, World, api_app, bearer


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[FastAPI, World]]:
    application, engine, world = api_app(f"sqlite:///{tmp_path / 'centre.db'}")
    yield application, world
    engine.dispose()


def _policy(header: str) -> dict[str, str]:
    return {part.split()[0]: part.partition(" ")[2] for part in (p.strip() for p in header.split(";")) if part}


def test_every_response_has_the_security_headers_and_person_data_is_never_cached(
        app: tuple[FastAPI, World]) -> None:
    application, world = app
    client = TestClient(application)
    admin = bearer(client, ADMIN)
    responses = {
        "a page": client.get("/operator"),
        "the sign-in page": client.get("/signin"),
        "a page's script": client.get("/static/js/operator/queue.js"),
        "patients": client.get("/api/v1/patients", headers=admin),
        "a person": client.get(f"/api/v1/patients/{world.people['ada']}", headers=admin),
        "a refusal": client.get("/api/v1/patients", headers={"Authorization": "Bearer nonsense"}),
        "not found": client.get("/no-such-page"),
        "health": client.get("/health"),
        "openapi": client.get("/openapi.json"),
    }
    for what, response in responses.items():
        policy = _policy(response.headers["content-security-policy"])
        assert policy["default-src"] == "'self'", what
        assert policy["frame-ancestors"] == "'none'", what
        assert "script-src" not in policy and "style-src" not in policy, what  # default-src 'self' alone
        assert response.headers["x-content-type-options"] == "nosniff", what
        assert response.headers["referrer-policy"] == "no-referrer", what
    for what in ("patients", "a person", "a refusal"):
        assert responses[what].headers["cache-control"] == "no-store", what


PAGES = Path(__file__).parents[3] / "centre_app" / "pages"
STYLE_BY_HASH = {"accept.html"}
"""Templates with one `<style>` that their route's own policy allows by its hash (the responder's
accept page: `centre_app/api/accept.py`); nothing else inline."""


@pytest.mark.parametrize("template", sorted(p.relative_to(PAGES / "templates").as_posix()
                                            for p in (PAGES / "templates").rglob("*.html")))
def test_no_page_has_inline_script_or_style(template: str) -> None:
    """What the policy would block, in every template of the pages: a `<script>` without `src`
    (with content), a `<style>`, a `style=` or `on…=` attribute, `javascript:` links."""
    page = (PAGES / "templates" / template).read_text()
    if template in STYLE_BY_HASH:
        page = page.replace("<style>{{ style }}</style>", "", 1)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert re.findall(r"<style\b|\sstyle=|\son\w+=|javascript:", page) == []


@pytest.mark.parametrize("script", sorted(p.relative_to(PAGES / "static" / "js").as_posix()
                                          for p in (PAGES / "static" / "js").rglob("*.js")))
def test_no_page_script_writes_markup_or_runs_strings(script: str) -> None:
    """In the pages' own scripts: code from strings, and markup written as text (which would carry
    inline scripts or styles). Setting `element.style` (the CSSOM) is allowed, and not looked for."""
    code = (PAGES / "static" / "js" / script).read_text()
    assert re.findall(r"eval\(|new Function|set(?:Timeout|Interval)\(\s*[\"'`]|setAttribute\(\s*[\"'](?:style|on)"
                      r"|innerHTML|outerHTML|insertAdjacentHTML|document\.write", code) == []


def test_docs_come_from_the_centre_itself(app: tuple[FastAPI, World]) -> None:
    application, _world = app
    client = TestClient(application)
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", docs.text, re.IGNORECASE) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert {Path(a).name for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 100, asset
    # Its one inline script (Swagger UI's set-up) is allowed by its hash, and nothing else is.
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    policy = _policy(docs.headers["content-security-policy"])
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["frame-ancestors"] == "'none'"
    assert client.get("/redoc").status_code == 404  # ReDoc has no package to serve it from


@pytest.mark.parametrize(("allow", "client_address", "served"), [
    (None, "127.0.0.1", True),
    (None, "::1", True),
    (None, "::ffff:127.0.0.1", True),
    (None, "10.20.0.7", False),
    (None, "testclient", False),  # not an address at all
    (["10.20.0.0/16"], "10.20.0.7", True),
    (["10.20.0.0/16"], "127.0.0.1", False),
])
def test_metrics_are_served_only_to_the_allowed_networks(tmp_path: Path, allow: list[str] | None,
                                                         client_address: str, served: bool) -> None:
    settings = {"metrics_allow": allow} if allow is not None else {}
    application, engine, _world = api_app(f"sqlite:///{tmp_path / 'centre.db'}", **settings)
    try:
        response = TestClient(application, client=(client_address, 50000)).get("/metrics")
    finally:
        engine.dispose()
    assert response.status_code == (200 if served else 403)
    if not served:
        assert "telecare" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
