"""The pages' sign-in: a session cookie, each role to its own landing page, sign-out that ends
every session, and no change signed in by cookie from another site."""

from collections.abc import Iterator
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.api.deps import SESSION_COOKIE, CentreState
from centre_app.pages.navigation import NAVIGATION, landing
from centre_app.pages.rendering import PageUser
from monitoring_centre.roles import Role
from monitoring_centre.storage import AuditEntry
from tests.support.api_world import ADMIN, PASSWORD, api_app

SAME_SITE = {"sec-fetch-site": "same-origin"}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app, engine, _world = api_app(database_url)

    @app.get("/a-page")
    def a_page(user: PageUser) -> dict[str, str]:
        return {"user": user.username}

    with TestClient(app, base_url="https://centre.test") as test_client:
        yield test_client
    engine.dispose()


def sign_in(client: TestClient, username: str, next_path: str = "") -> str:
    response = client.post("/signin", data={"username": username, "password": PASSWORD, "next": next_path},
                           headers=SAME_SITE, follow_redirects=False)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def audit_actions(client: TestClient, actor: str) -> list[str]:
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session:
        return list(session.scalars(select(AuditEntry.action).where(AuditEntry.actor == actor)
                                    .order_by(AuditEntry.id)))


@pytest.mark.parametrize(("username", "role"), [("operator", Role.OPERATOR), ("nurse", Role.NURSE),
                                                ("daughter", Role.FAMILY), ("ada", Role.PERSON),
                                                (ADMIN, Role.ADMIN)])
def test_each_role_lands_on_its_own_first_page(client: TestClient, username: str, role: Role) -> None:
    assert sign_in(client, username) == NAVIGATION[role][0].href == landing(role)
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == landing(role)


def test_the_session_cookie_is_http_only_same_site_strict_and_secure_over_https(client: TestClient) -> None:
    response = client.post("/signin", data={"username": "operator", "password": PASSWORD}, headers=SAME_SITE,
                           follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie and "path=/" in cookie


def test_a_wrong_password_shows_the_page_again_with_the_reason_and_sets_no_cookie(client: TestClient) -> None:
    response = client.post("/signin", data={"username": "operator", "password": "wrong-password-here"},
                           headers=SAME_SITE, follow_redirects=False)
    assert response.status_code == 401
    assert "wrong username or password" in response.text and 'value="operator"' in response.text
    assert SESSION_COOKIE not in client.cookies
    assert audit_actions(client, "operator") == ["login_failed"]


def test_a_page_without_a_session_redirects_to_sign_in_and_back(client: TestClient) -> None:
    response = client.get("/a-page", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin?next=/a-page"
    assert sign_in(client, "nurse", "/a-page") == "/a-page"
    assert client.get("/a-page").json() == {"user": "nurse"}


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "nurse"])
def test_sign_in_never_sends_the_browser_to_another_site(client: TestClient, elsewhere: str) -> None:
    assert sign_in(client, "nurse", elsewhere) == landing(Role.NURSE)


def test_the_signed_in_user_and_only_their_roles_menu_are_on_every_page(client: TestClient) -> None:
    sign_in(client, "nurse")
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "nurse, community nurse" in page.text and "(nurse)" not in page.text
    for role, items in NAVIGATION.items():
        for item in items:
            if item not in NAVIGATION[Role.NURSE]:
                assert f'href="{item.href}"' not in page.text, (role, item)
    assert 'href="/nurse"' in page.text and 'action="/signout"' in page.text


def test_sign_out_ends_every_session_of_the_account_and_is_audited(client: TestClient) -> None:
    sign_in(client, "operator")
    token = client.cookies[SESSION_COOKIE]
    other_device = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/alerts", headers=other_device).status_code == 200
    response = client.post("/signout", headers=SAME_SITE, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v1/alerts", headers=other_device).status_code == 401
    assert audit_actions(client, "operator")[-1] == "logout"
    assert sign_in(client, "operator") == landing(Role.OPERATOR)  # a new sign-in works at once
    assert client.get("/api/v1/alerts").status_code == 200


def test_the_api_accepts_the_cookie_for_reads_and_for_changes_from_its_own_pages(client: TestClient) -> None:
    sign_in(client, "operator")
    assert client.get("/api/v1/alerts").status_code == 200
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    acknowledged = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=SAME_SITE)
    assert acknowledged.status_code == 200, acknowledged.text


@pytest.mark.parametrize("headers", [{}, {"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"},
                                     {"sec-fetch-site": "same-site", "origin": "https://centre.test"}])
def test_a_change_signed_in_by_cookie_from_another_site_is_refused_and_audited(
        client: TestClient, headers: dict[str, str]) -> None:
    sign_in(client, "operator")
    session = {"Authorization": f"Bearer {client.cookies[SESSION_COOKIE]}"}
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    refused = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=headers)
    assert refused.status_code == 403
    assert audit_actions(client, "operator")[-1] == "refused"
    assert client.post("/signout", headers=headers, follow_redirects=False).status_code == 303
    assert client.get("/api/v1/alerts", headers=session).status_code == 200  # a forged sign-out ended nothing
    assert "logout" not in audit_actions(client, "operator")


def test_an_origin_of_this_site_passes_without_fetch_metadata(client: TestClient) -> None:
    sign_in(client, "operator")
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    response = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers={"origin": "https://centre.test"})
    assert response.status_code == 200


def test_pages_and_the_api_are_never_cached_and_static_files_may_be(client: TestClient) -> None:
    assert client.get("/signin").headers["cache-control"] == "no-store"
    assert "cache-control" not in client.get("/static/telecare.css").headers
    css = client.get("/static/vendor/nhsuk-frontend/nhsuk-frontend.min.css")
    assert css.status_code == 200 and "://" not in css.text  # no font or image from another host
