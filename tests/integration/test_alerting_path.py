"""From a pendant press to a keyholder who accepts, end to end: real Mosquitto, a real
centre, a real SMTP server, a FHIR record server (a real HTTP server that parses what it
gets with fhir.resources), and the accept page over HTTP."""

import json
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from centre_app.auth import create_user
from centre_app.centre import Centre, CentreThread
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import AuditEntry, Person
from tests.support.centre import centre_settings, enrol_test_homes, get_json, press_pendant, token
from tests.support.smtp_server import SmtpServer, smtp_server
from tests.support.waiting import wait_for

ADMIN = ("admin-ann", "admin-password-" + secrets.token_hex(4))


class RecordServer(ThreadingHTTPServer):
    """Takes FHIR transaction Bundles, as a record server would, and keeps them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordHandler)
        self.bundles: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class RecordHandler(BaseHTTPRequestHandler):
    server: RecordServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Bundle.model_validate_json(body)  # refuses anything that is not valid FHIR
        with self.server.lock:
            self.server.bundles.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        self.wfile.write(b'{"resourceType": "Bundle", "type": "transaction-response"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def record_server() -> Iterator[RecordServer]:
    server = RecordServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def centre(tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], smtp: SmtpServer,
           record_server: RecordServer, database_url: str) -> Iterator[tuple[Centre, dict[str, int]]]:
    settings = centre_settings(
        tmp_path / "centre.db", mosquitto, broker_accounts, alerting_poll_s=0.1, database_url=database_url,
        smtp={"host": smtp.host, "port": smtp.port, "starttls": False, "mail_from": "alerts@centre.test"},
        fhir_base_url=f"http://127.0.0.1:{record_server.server_address[1]}/fhir",
        allowed_internal_targets=["127.0.0.0/8"],  # the test's webhook addresses are on loopback
    )
    centre = Centre(settings)
    people = enrol_test_homes(centre)
    with centre.sessions() as session:
        create_user(session, *ADMIN, role="admin")
        ada = session.get(Person, people["hub-1"])
        assert ada is not None
        ada.service = "keyholder_only"
        ada.access_details = "Key safe left of the door, code 2468"
        session.commit()
    with CentreThread(centre):
        yield centre, people


def test_a_keyholder_is_mailed_accepts_and_is_shown_how_to_get_in(
        centre: tuple[Centre, dict[str, int]], mosquitto: Any, broker_accounts: dict[str, BrokerAccount],
        smtp: SmtpServer, record_server: RecordServer) -> None:
    centre_, people = centre
    url, admin = centre_.url, token(centre_.url, *ADMIN)
    headers = {"Authorization": f"Bearer {admin}"}
    kim = httpx.post(f"{url}/api/v1/responders", headers=headers,
                     json={"name": "Kim", "role": "keyholder", "contact_points": ["mailto:kim@family.test"]})
    assert kim.status_code == 201, kim.text
    nominated = httpx.put(f"{url}/api/v1/patients/{people['hub-1']}/contacts", headers=headers,
                          json={"responder_ids": [kim.json()["id"]]})
    assert nominated.status_code == 200, nominated.text

    press_pendant(mosquitto, broker_accounts)

    [mail] = wait_for(lambda: smtp.mailbox.received, what="the keyholder's mail")
    assert mail.rcpt_tos == ["kim@family.test"]
    assert "Ada Lovelace pressed the help button" in str(mail.message["Subject"])
    link = re.search(r"Accept: (http://\S+)", mail.text)
    assert link is not None and link.group(1).startswith(f"{url}/accept/")
    assert "2468" not in mail.text  # the way in is only shown to whoever accepts

    page = httpx.get(link.group(1))
    assert page.status_code == 200 and "can you go to Ada Lovelace now?" in page.text
    accepted = httpx.post(link.group(1))
    assert accepted.status_code == 200 and "Key safe left of the door, code 2468" in accepted.text
    again = httpx.post(link.group(1))  # a second press, or a replay of the link: the way in is shown once
    assert again.status_code == 409 and "already accepted" in again.text and "2468" not in again.text
    assert httpx.get(f"{url}/accept/forged-token").status_code == 404

    operator = token(url)
    [alert] = [a for a in get_json(url, "/api/v1/alerts", operator) if a["person_id"] == people["hub-1"]]
    assert alert["status"] == "in_progress"
    def finished() -> dict[str, Any] | None:
        chain: dict[str, Any] = get_json(url, f"/api/v1/alerts/{alert['id']}/escalation", operator)
        return chain if chain["state"] == "finished" else None

    chain = wait_for(finished, what="the escalation to stop")
    assert chain["policy"] == "keyholder_only" and chain["note"] == "a responder accepted"
    [sent] = [n for n in chain["notifications"] if n["status"] == "sent"]
    assert sent["responder_name"] == "Kim" and sent["accepted_at"] is not None
    [queued] = [a for a in get_json(url, "/api/v1/alerts", operator) if a["id"] == alert["id"]]
    assert queued["escalation"] == "Kim: sent (a responder accepted)"  # the operators' one-line view

    def written(status: str) -> dict[str, Any] | None:
        with record_server.lock:
            for bundle in record_server.bundles:
                flags = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag"]
                if flags and flags[0]["id"] == f"alert-{alert['id']}" and any(
                        e["resource"]["resourceType"] == "Communication" for e in bundle["entry"]) \
                        and status in json.dumps(bundle):
                    return bundle
        return None

    bundle = wait_for(lambda: written("Kim"), what="the record with Kim's notification")
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    record = httpx.get(f"{url}/api/v1/patients/{people['hub-1']}/record",
                       headers={"Authorization": f"Bearer {operator}"})
    assert record.headers["content-type"].startswith("application/fhir+json")
    kinds = {e["resource"]["resourceType"] for e in record.json()["entry"]}
    assert {"Patient", "Flag", "DetectedIssue", "Communication"} <= kinds
    Bundle.model_validate(record.json())

    # Resolved: the record says how it ended, and when.
    resolved = httpx.post(f"{url}/api/v1/alerts/{alert['id']}/resolve", headers={"Authorization": f"Bearer {operator}"},
                          json={"outcome": "responder_visited", "note": "Kim found Ada on the floor, unhurt"})
    assert resolved.status_code == 200, resolved.text

    def flag_when_resolved() -> dict[str, Any] | None:
        with record_server.lock:
            for bundle in record_server.bundles:
                for entry in bundle["entry"]:
                    resource = entry["resource"]
                    if resource["resourceType"] == "Flag" and resource["status"] == "inactive":
                        return bundle
        return None

    final = wait_for(flag_when_resolved, what="the resolved alert in the record")
    [flag] = [e["resource"] for e in final["entry"] if e["resource"]["resourceType"] == "Flag"]
    assert flag["period"]["end"] >= flag["period"]["start"]
    [issue] = [e["resource"] for e in final["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert "responder_visited" in json.dumps(issue["mitigation"])

    with centre_.sessions() as session:
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.person_id == people["hub-1"])))
    assert {"change_contacts", "notify_responder", "open_accept_link", "show_access_details", "view_record"} <= actions


def test_only_an_admin_changes_responders_and_a_bad_address_is_refused(
        centre: tuple[Centre, dict[str, int]]) -> None:
    centre_, people = centre
    url = centre_.url
    operator = {"Authorization": f"Bearer {token(url)}"}
    admin = {"Authorization": f"Bearer {token(url, *ADMIN)}"}
    new = {"name": "Lee", "role": "keyholder", "contact_points": ["mailto:lee@family.test"]}
    assert httpx.post(f"{url}/api/v1/responders", headers=operator, json=new).status_code == 403
    bad = httpx.post(f"{url}/api/v1/responders", headers=admin, json={**new, "contact_points": ["mailto:nobody"]})
    assert bad.status_code == 422 and "mailto:nobody" in bad.text
    assert httpx.post(f"{url}/api/v1/responders", headers=admin, json={**new, "role": "plumber"}).status_code == 422
    assert httpx.put(f"{url}/api/v1/patients/{people['hub-1']}/contacts", headers=operator,
                     json={"responder_ids": []}).status_code == 403


def test_a_test_message_proves_a_responders_channels_work(centre: tuple[Centre, dict[str, int]],
                                                          smtp: SmtpServer) -> None:
    centre_, _people = centre
    url = centre_.url
    admin = {"Authorization": f"Bearer {token(url, *ADMIN)}"}
    lee = httpx.post(f"{url}/api/v1/responders", headers=admin, json={
        "name": "Lee", "role": "keyholder",
        "contact_points": ["mailto:lee@family.test", "json://127.0.0.1:1/nothing-listens-here"]}).json()
    results = httpx.post(f"{url}/api/v1/responders/{lee['id']}/test", headers=admin, timeout=60).json()
    assert [(r["address"], r["ok"]) for r in results] == [("mailto:lee@family.test", True),
                                                          ("json://127.0.0.1:1/nothing-listens-here", False)]
    assert results[1]["detail"]  # says why
    [mail] = smtp.mailbox.received
    assert mail.rcpt_tos == ["lee@family.test"] and "This is a test" in mail.text
