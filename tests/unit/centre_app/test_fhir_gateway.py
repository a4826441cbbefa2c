"""The FHIR gateway (`/fhir/`): registered clients, signed assertions, tokens, UK Core resources,
searchset paging, the eFI import, OperationOutcome errors and the audit each read leaves.

The world (`tests/support/api_world.py`): Ada and Bob, an open help-button alarm each. Added
here: test-range NHS numbers, Ada's SpO2 and pulse readings (one flagged, one perfusion index
that is never served), the record written for each alert, and three clients: `gp-surgery`
(every read scope, everyone), `ada-only` (Observation only, Ada only) and `frailty-feed`
(Observation read and write, everyone; its key a JWKS of an EC key).

Every resource the gateway returns is parsed with `fhir.resources` (R4B, wire-identical to R4
for these resources). The HL7 validator (Java) is not run here.
"""

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import fhir, patient_record
from centre_app import admin
from centre_app.fhir_gateway import clients
from monitoring_centre.storage import AuditEntry, InboundMessage, Person, Reading, utc_now
from tests.support.api_world import ADMIN, World, api_app, bearer, served

ADA_NHS = "9990001235"
BOB_NHS = "9990001243"
TOKEN_URL = "http://testserver/fhir/token"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ALL_READS = list(clients.READ_SCOPES)


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def assertion(key: Any, client_id: str, *, aud: str = TOKEN_URL, exp_in: float = 240, jti: str | None = None,
              alg: str = "RS512", kid: str | None = None, **claims: Any) -> str:
    """A client assertion as a clinical system makes one."""
    now = datetime.now(UTC)
    body = {"iss": client_id, "sub": client_id, "aud": aud, "jti": jti or str(uuid.uuid4()),
            "exp": int((now + timedelta(seconds=exp_in)).timestamp()), **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def token_form(signed: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed, **extra}


@dataclass
class Gateway:
    client: TestClient
    world: World
    sessions: sessionmaker[Session]
    gp_key: rsa.RSAPrivateKey
    ada_only_key: rsa.RSAPrivateKey
    feed_key: ec.EllipticCurvePrivateKey
    readings: dict[str, int]

    def token(self, key: Any, client_id: str, alg: str = "RS512", kid: str | None = None, **extra: str) -> str:
        answer = self.client.post("/fhir/token", data=token_form(assertion(key, client_id, alg=alg, kid=kid), **extra))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def gp(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(self.gp_key, 'gp-surgery')}"}

    def audit(self, action: str | None = None, actor: str | None = None) -> list[AuditEntry]:
        with self.sessions() as session:
            query = select(AuditEntry).order_by(AuditEntry.id)
            if action:
                query = query.where(AuditEntry.action == action)
            if actor:
                query = query.where(AuditEntry.actor == actor)
            return list(session.scalars(query))


def _reading(session: Session, person_id: int, metric: str, value: float | None, unit: str, minutes_ago: int,
             quality: list[str] | None = None) -> int:
    at = utc_now() - timedelta(minutes=minutes_ago)
    message_id = str(uuid.uuid4())
    session.add(InboundMessage(id=message_id, type="reading", hub_id="hub-ada", device_id="oximeter-1",
                               source_ts=at, hub_ts=at, received_at=at, payload="{}"))
    row = Reading(message_id=message_id, person_id=person_id, device_id="oximeter-1", metric=metric, value=value,
                  unit=unit, quality=quality or [], source_ts=at, received_at=at)
    session.add(row)
    session.flush()
    return row.id


@pytest.fixture
def gateway(database_url: str) -> Iterator[Gateway]:
    app, engine, world = api_app(database_url, allow_test_nhs_numbers=True)
    sessions: sessionmaker[Session] = app.state.centre.sessions
    gp_key, ada_only_key = _rsa(), _rsa()
    feed_key = ec.generate_private_key(ec.SECP256R1())
    jwks = json.dumps({"keys": [{**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(feed_key.public_key())),
                                 "kid": "feed-1", "use": "sig"}]})
    readings = {}
    with sessions() as session, session.begin():
        session.get_one(Person, world.people["ada"]).nhs_number = ADA_NHS
        session.get_one(Person, world.people["bob"]).nhs_number = BOB_NHS
        ada = world.people["ada"]
        readings["spo2_new"] = _reading(session, ada, "spo2", 97, "%", 10)
        readings["pulse_new"] = _reading(session, ada, "pulse_rate", 72, "/min", 10)
        readings["spo2_flagged"] = _reading(session, ada, "spo2", 88, "%", 70, ["questionable"])
        readings["spo2_off"] = _reading(session, ada, "spo2", None, "%", 130, ["sensor_off"])
        readings["pulse_old"] = _reading(session, ada, "pulse_rate", 80, "/min", 60 * 26)
        readings["perfusion"] = _reading(session, ada, "perfusion_index", 2.5, "%", 10)
        _reading(session, world.people["bob"], "spo2", 95, "%", 10)
        patient_record.queue(session, utc_now(), send=False, allow_test_nhs_numbers=True)
        admin.add_fhir_client(session, client_id="gp-surgery", name="Orchard Surgery", public_key=_public_pem(gp_key),
                              scopes=ALL_READS, person_ids=None, purpose="direct care: GP practice")
        clients.register(session, client_id="ada-only", name="Ada's hospital", public_key=_public_pem(ada_only_key),
                         scopes=["system/Observation.read"], person_ids=[ada], by="admin")
        clients.register(session, client_id="frailty-feed", name="GP frailty feed", public_key=jwks,
                         scopes=["system/Observation.read", "system/Observation.write"], person_ids=None, by="admin")
    with TestClient(app) as client:
        yield Gateway(client, world, sessions, gp_key, ada_only_key, feed_key, readings)
    engine.dispose()


def parse(body: dict[str, Any]) -> Any:
    """The resource, validated by `fhir.resources`; every entry of a Bundle too."""
    model = get_fhir_model_class(body["resourceType"])
    resource = model.model_validate(body)
    for entry in body.get("entry", []):
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    return resource


def outcome_of(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    found = OperationOutcome.model_validate(answer.json())
    return str(found.issue[0].diagnostics)


# ---------------------------------------------------------------------------------------------
# Metadata and tokens

def test_the_capability_statement_needs_no_token_and_names_the_token_url(gateway: Gateway) -> None:
    answer = gateway.client.get("/fhir/metadata")
    assert answer.status_code == 200
    statement = parse(answer.json())
    assert isinstance(statement, CapabilityStatement)
    rest = answer.json()["rest"][0]
    assert rest["security"]["extension"][0]["extension"][0] == {"url": "token", "valueUri": TOKEN_URL}
    served = {r["type"]: r for r in rest["resource"]}
    assert set(served) == {"Patient", "Observation", "Flag", "DetectedIssue", "Communication"}
    assert fhir.UK_CORE_OXYGEN_SATURATION in served["Observation"]["supportedProfile"]


def test_a_valid_assertion_gets_a_short_lived_token_with_the_clients_scopes(gateway: Gateway) -> None:
    answer = gateway.client.post("/fhir/token", data=token_form(assertion(gateway.gp_key, "gp-surgery")))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"].split() == sorted(ALL_READS)
    assert answer.headers["cache-control"] == "no-store"
    issued = gateway.audit("fhir_token", "fhir-client:gp-surgery")
    assert len(issued) == 1 and json.loads(issued[0].detail)["client"] == "gp-surgery"


def test_a_token_can_be_narrowed_to_fewer_scopes_but_never_widened(gateway: Gateway) -> None:
    narrowed = gateway.client.post("/fhir/token", data=token_form(assertion(gateway.gp_key, "gp-surgery"),
                                                                  scope="system/Patient.read"))
    assert narrowed.json()["scope"] == "system/Patient.read"
    headers = {"Authorization": f"Bearer {narrowed.json()['access_token']}"}
    refused = gateway.client.get(f"/fhir/Observation?patient=Patient/person-{gateway.world.people['ada']}",
                                 headers=headers)
    assert "system/Observation.read" in outcome_of(refused, 403)
    widened = gateway.client.post("/fhir/token", data=token_form(assertion(gateway.ada_only_key, "ada-only"),
                                                                 scope="system/Patient.read"))
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(("case", "status", "error"), [
    ("bad signature", 401, "invalid_client"),
    ("expired", 401, "invalid_client"),
    ("valid too long", 401, "invalid_client"),
    ("valid for ever", 401, "invalid_client"),
    ("wrong audience", 401, "invalid_client"),
    ("sub is not iss", 401, "invalid_client"),
    ("hmac", 401, "invalid_client"),
    ("unknown client", 401, "invalid_client"),
    ("no jti", 401, "invalid_client"),
    ("wrong grant type", 400, "unsupported_grant_type"),
    ("no assertion type", 400, "invalid_request"),
])
def test_a_bad_assertion_is_refused_and_audited(gateway: Gateway, case: str, status: int, error: str) -> None:
    key, client_id = gateway.gp_key, "gp-surgery"
    signed = {
        "bad signature": lambda: assertion(_rsa(), client_id),
        "expired": lambda: assertion(key, client_id, exp_in=-60),
        "valid too long": lambda: assertion(key, client_id, exp_in=600),
        "valid for ever": lambda: jwt.encode({"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "jti": "x",
                                              "exp": 10**20}, key, algorithm="RS512"),
        "wrong audience": lambda: assertion(key, client_id, aud="http://testserver/oauth2/token"),
        "sub is not iss": lambda: assertion(key, client_id, sub="someone-else"),
        "hmac": lambda: jwt.encode({"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "jti": "x",
                                    "exp": int(utc_now().timestamp()) + 60}, secrets.token_bytes(32),
                                   algorithm="HS256"),
        "unknown client": lambda: assertion(key, "nobody-registered"),
        "no jti": lambda: jwt.encode({"iss": client_id, "sub": client_id, "aud": TOKEN_URL,
                                      "exp": int(utc_now().timestamp()) + 60}, key, algorithm="RS512"),
    }.get(case, lambda: assertion(key, client_id))()
    form = token_form(signed)
    if case == "wrong grant type":
        form["grant_type"] = "password"
    if case == "no assertion type":
        del form["client_assertion_type"]
    answer = gateway.client.post("/fhir/token", data=form)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert "access_token" not in answer.json()
    refused = [row for row in gateway.audit("refused") if "/fhir/token" in row.detail]
    assert len(refused) == 1 and error in refused[0].detail


def test_an_assertion_is_accepted_once(gateway: Gateway) -> None:
    signed = assertion(gateway.gp_key, "gp-surgery", jti="once-only")
    assert gateway.client.post("/fhir/token", data=token_form(signed)).status_code == 200
    again = gateway.client.post("/fhir/token", data=token_form(signed))
    assert again.status_code == 401
    assert "jti" in again.json()["error_description"]
    other = assertion(gateway.gp_key, "gp-surgery", jti="once-only")  # a new assertion, the same jti
    assert gateway.client.post("/fhir/token", data=token_form(other)).status_code == 401
    assert len([r for r in gateway.audit("refused") if "jti" in r.detail]) == 2


def test_a_jwks_key_is_chosen_by_kid(gateway: Gateway) -> None:
    assert gateway.token(gateway.feed_key, "frailty-feed", alg="ES256", kid="feed-1")
    wrong_kid = gateway.client.post("/fhir/token", data=token_form(
        assertion(gateway.feed_key, "frailty-feed", alg="ES256", kid="feed-2")))
    assert wrong_kid.status_code == 401


def test_reads_need_a_gateway_token(gateway: Gateway) -> None:
    ada = gateway.world.people["ada"]
    assert "bearer" in outcome_of(gateway.client.get(f"/fhir/Patient/person-{ada}"), 401)
    console = bearer(gateway.client, ADMIN)  # a console sign-in is not a gateway token
    assert outcome_of(gateway.client.get(f"/fhir/Patient/person-{ada}", headers=console), 401)


def test_a_deactivated_clients_tokens_stop_working(gateway: Gateway) -> None:
    headers = gateway.gp()
    ada = gateway.world.people["ada"]
    assert gateway.client.get(f"/fhir/Patient/person-{ada}", headers=headers).status_code == 200
    with gateway.sessions() as session, session.begin():
        admin.deactivate_fhir_client(session, "gp-surgery")
    outcome_of(gateway.client.get(f"/fhir/Patient/person-{ada}", headers=headers), 401)
    again = gateway.client.post("/fhir/token", data=token_form(assertion(gateway.gp_key, "gp-surgery")))
    assert again.status_code == 401
    assert gateway.audit("fhir_client_deactivated")


# ---------------------------------------------------------------------------------------------
# Patient

def test_a_patient_is_found_by_nhs_number_as_uk_core_and_the_person_sees_the_read(gateway: Gateway) -> None:
    ada = gateway.world.people["ada"]
    answer = gateway.client.get(f"/fhir/Patient?identifier={NHS}|{ADA_NHS}",
                                headers={**gateway.gp(), "X-Request-Purpose": "medication review"})
    assert answer.status_code == 200, answer.text
    bundle = parse(answer.json())
    assert isinstance(bundle, Bundle) and bundle.type == "searchset" and bundle.total == 1
    body = answer.json()["entry"][0]
    assert body["fullUrl"] == f"http://testserver/fhir/Patient/person-{ada}"
    patient = body["resource"]
    assert patient["meta"]["profile"] == [fhir.UK_CORE_PATIENT]
    identifier = patient["identifier"][0]
    assert (identifier["system"], identifier["value"]) == (NHS, ADA_NHS)
    assert identifier["extension"][0]["url"] == fhir.NHS_NUMBER_VERIFICATION
    assert identifier["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "02"

    seen = gateway.client.get(f"/api/v1/patients/{ada}/audit", headers=bearer(gateway.client, "ada")).json()
    reads = [row for row in seen if row["action"] == "fhir_read"]
    assert len(reads) == 1 and reads[0]["actor"] == "fhir-client:gp-surgery"
    detail = json.loads(reads[0]["detail"])
    assert detail["name"] == "Orchard Surgery"
    assert detail["purpose"] == "direct care: GP practice"
    assert detail["request_purpose"] == "medication review"
    assert detail["returned"] == [f"Patient/person-{ada}"]


def test_an_unknown_nhs_number_finds_nobody_and_another_system_is_refused(gateway: Gateway) -> None:
    headers = gateway.gp()
    nobody = gateway.client.get(f"/fhir/Patient?identifier={NHS}|9990001251", headers=headers)
    assert nobody.status_code == 200 and nobody.json()["total"] == 0 and "entry" not in nobody.json()
    outcome_of(gateway.client.get("/fhir/Patient?identifier=urn:other|123", headers=headers), 400)
    outcome_of(gateway.client.get("/fhir/Patient", headers=headers), 400)
    outcome_of(gateway.client.get("/fhir/Patient?name=Ada", headers=headers), 400)
    outcome_of(gateway.client.get("/fhir/Patient/person-999999", headers=headers), 404)


def test_a_person_outside_the_clients_filter_is_refused_403_and_audited(gateway: Gateway) -> None:
    bob = gateway.world.people["bob"]
    headers = {"Authorization": f"Bearer {gateway.token(gateway.ada_only_key, 'ada-only')}"}
    refused = gateway.client.get(f"/fhir/Observation?patient=Patient/person-{bob}", headers=headers)
    assert "may not see" in outcome_of(refused, 403)
    rows = gateway.audit("refused", "fhir-client:ada-only")
    assert [row.person_id for row in rows] == [bob]
    assert f"person-{bob}" in rows[0].detail and "403" in rows[0].detail
    bobs = gateway.client.get(f"/api/v1/patients/{bob}/audit", headers=bearer(gateway.client, "bob")).json()
    assert any(row["action"] == "refused" and row["actor"] == "fhir-client:ada-only" for row in bobs)
    ada = gateway.world.people["ada"]
    assert gateway.client.get(f"/fhir/Observation?patient=Patient/person-{ada}", headers=headers).status_code == 200


def test_a_missing_scope_is_refused_403_and_audited(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.token(gateway.ada_only_key, 'ada-only')}"}
    ada = gateway.world.people["ada"]
    assert "system/Patient.read" in outcome_of(gateway.client.get(f"/fhir/Patient/person-{ada}", headers=headers), 403)
    assert outcome_of(gateway.client.get(f"/fhir/Flag?patient=person-{ada}", headers=headers), 403)
    frailty = {"resourceType": "Observation", "status": "final", "code": {"coding": []}}
    assert outcome_of(gateway.client.post("/fhir/Observation", headers=headers, json=frailty), 403)
    assert len(gateway.audit("refused", "fhir-client:ada-only")) == 3


# ---------------------------------------------------------------------------------------------
# Observations

def _all_pages(gateway: Gateway, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    pages = 0
    while url:
        answer = gateway.client.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        parse(answer.json())
        entries += answer.json().get("entry", [])
        links = {link["relation"]: link["url"] for link in answer.json()["link"]}
        url = links.get("next", "")
        pages += 1
        assert pages < 10
    return entries


def test_observations_are_uk_core_vital_signs_with_flagged_readings_marked(gateway: Gateway) -> None:
    ada = gateway.world.people["ada"]
    answer = gateway.client.get(f"/fhir/Observation?patient=Patient/person-{ada}", headers=gateway.gp())
    assert answer.status_code == 200, answer.text
    parse(answer.json())
    found = {entry["resource"]["id"]: entry["resource"] for entry in answer.json()["entry"]}
    r = gateway.readings
    assert set(found) == {f"reading-{r[k]}" for k in ("spo2_new", "pulse_new", "spo2_flagged", "spo2_off",
                                                      "pulse_old")}
    assert list(found)[-1] == f"reading-{r['pulse_old']}"  # newest first
    assert f"reading-{r['perfusion']}" not in found
    spo2 = found[f"reading-{r['spo2_new']}"]
    assert spo2["meta"]["profile"] == [fhir.UK_CORE_OXYGEN_SATURATION]
    assert spo2["category"][0]["coding"][0]["code"] == "vital-signs"
    assert {c["code"] for c in spo2["code"]["coding"]} >= {"2708-6", "59408-5"}
    assert spo2["valueQuantity"] == {"value": 97.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    assert spo2["subject"] == {"reference": f"Patient/person-{ada}"}
    pulse = found[f"reading-{r['pulse_new']}"]
    assert pulse["meta"]["profile"] == [fhir.UK_CORE_HEART_RATE]
    assert pulse["valueQuantity"]["code"] == "/min"
    flagged = found[f"reading-{r['spo2_flagged']}"]
    assert flagged["status"] == "preliminary" and "questionable" in flagged["note"][0]["text"]
    off = found[f"reading-{r['spo2_off']}"]
    assert "valueQuantity" not in off and off["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    assert "Bob" not in answer.text


def test_observations_are_searched_by_code_and_date(gateway: Gateway) -> None:
    ada, r, headers = gateway.world.people["ada"], gateway.readings, gateway.gp()
    base = f"/fhir/Observation?patient=Patient/person-{ada}"

    def ids(query: str) -> set[str]:
        answer = gateway.client.get(base + query, headers=headers)
        assert answer.status_code == 200, answer.text
        return {entry["resource"]["id"] for entry in answer.json().get("entry", [])}

    spo2 = {f"reading-{r[k]}" for k in ("spo2_new", "spo2_flagged", "spo2_off")}
    pulse = {f"reading-{r[k]}" for k in ("pulse_new", "pulse_old")}
    assert ids("&code=2708-6") == spo2
    assert ids("&code=http://loinc.org|59408-5") == spo2
    assert ids("&code=8867-4") == pulse
    assert ids("&code=2708-6,8867-4") == spo2 | pulse
    assert ids("&code=http://snomed.info/sct|8867-4") == set()
    since = (utc_now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"&date=ge{since}") == spo2 | {f"reading-{r['pulse_new']}"}
    assert ids(f"&date=le{since}") == {f"reading-{r['pulse_old']}"}
    yesterday = (utc_now() - timedelta(hours=27)).strftime("%Y-%m-%dT%H:%M:%S%%2B00:00")
    assert ids(f"&code=8867-4&date=ge{yesterday}&date=le{since}") == {f"reading-{r['pulse_old']}"}
    outcome_of(gateway.client.get(base + "&date=ap2026-01-01", headers=headers), 400)
    outcome_of(gateway.client.get(base + "&date=ge2026-01-01T10:00:00", headers=headers), 400)
    outcome_of(gateway.client.get("/fhir/Observation?code=2708-6", headers=headers), 400)


def test_observation_pages_follow_next_links_to_the_end(gateway: Gateway) -> None:
    ada, headers = gateway.world.people["ada"], gateway.gp()
    first = gateway.client.get(f"/fhir/Observation?patient=Patient/person-{ada}&_count=2", headers=headers).json()
    assert first["total"] == 5 and len(first["entry"]) == 2
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["next"].startswith("http://testserver/fhir/Observation?") and "_offset=2" in links["next"]
    with gateway.sessions() as session, session.begin():  # a reading arriving between pages shifts nothing
        _reading(session, ada, "spo2", 96, "%", 1)
    entries = _all_pages(gateway, f"/fhir/Observation?patient=Patient/person-{ada}&_count=2", headers)
    ids = [entry["resource"]["id"] for entry in entries]
    assert len(ids) == 6 and len(set(ids)) == 6
    paged = _all_pages(gateway, links["next"].removeprefix("http://testserver"), headers)
    assert len(paged) == 3  # the first search's snapshot: the new reading is not in it
    reads = gateway.audit("fhir_read", "fhir-client:gp-surgery")
    assert all(row.person_id == ada for row in reads)
    assert sum(len(json.loads(row.detail)["returned"]) for row in reads) == 2 + 6 + 3


def test_an_observation_is_read_by_id(gateway: Gateway) -> None:
    r, headers = gateway.readings, gateway.gp()
    answer = gateway.client.get(f"/fhir/Observation/reading-{r['spo2_new']}", headers=headers)
    assert answer.status_code == 200 and parse(answer.json()).id == f"reading-{r['spo2_new']}"
    outcome_of(gateway.client.get(f"/fhir/Observation/reading-{r['perfusion']}", headers=headers), 404)
    outcome_of(gateway.client.get("/fhir/Observation/reading-99999999", headers=headers), 404)
    outcome_of(gateway.client.get("/fhir/Observation/nonsense", headers=headers), 404)


# ---------------------------------------------------------------------------------------------
# The record: Flag, DetectedIssue, Communication

def test_the_records_flags_and_issues_are_served_with_the_flag_priority(gateway: Gateway) -> None:
    ada, alert, headers = gateway.world.people["ada"], gateway.world.alerts["ada"], gateway.gp()
    flags = gateway.client.get(f"/fhir/Flag?patient=Patient/person-{ada}", headers=headers)
    assert flags.status_code == 200, flags.text
    parse(flags.json())
    flag = flags.json()["entry"][0]["resource"]
    assert flag["id"] == f"alert-{alert}"
    priority = flag["extension"][0]
    assert priority["url"] == "http://hl7.org/fhir/StructureDefinition/flag-priority"
    assert priority["valueCodeableConcept"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/flag-priority-code", "code": "PH", "display": "High priority"}
    read = gateway.client.get(f"/fhir/Flag/alert-{alert}", headers=headers)
    assert read.status_code == 200 and parse(read.json()).id == f"alert-{alert}"
    issue = gateway.client.get(f"/fhir/DetectedIssue/alert-issue-{alert}", headers=headers)
    assert issue.status_code == 200 and parse(issue.json()).severity == "high"
    communications = gateway.client.get(f"/fhir/Communication?patient=person-{ada}", headers=headers)
    assert communications.status_code == 200 and communications.json()["total"] == 0
    outcome_of(gateway.client.get(f"/fhir/Flag/alert-{gateway.world.alerts['bob'] + 100}", headers=headers), 404)


# ---------------------------------------------------------------------------------------------
# The eFI from the GP record

def _efi(subject: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "713634000",
                                 "display": "Electronic frailty index score"}]},
            "subject": subject, "effectiveDateTime": "2026-11-20", "valueQuantity": {"value": 0.42}, **fields}


def test_an_efi_from_the_gp_record_sets_the_category_the_nurse_orders_by(gateway: Gateway) -> None:
    ada = gateway.world.people["ada"]
    headers = {"Authorization": f"Bearer {gateway.token(gateway.feed_key, 'frailty-feed', alg='ES256', kid='feed-1')}"}
    posted = gateway.client.post("/fhir/Observation", headers=headers,
                                 json=_efi({"identifier": {"system": NHS, "value": ADA_NHS}}))
    assert posted.status_code == 200, posted.text
    assert "severe" in str(OperationOutcome.model_validate(posted.json()).issue[0].diagnostics)
    nurse = bearer(gateway.client, "nurse")
    frailty = gateway.client.get(f"/api/v1/patients/{ada}/frailty", headers=nurse).json()
    assert frailty["current"]["category"] == "severe"
    assert frailty["current"]["source"] == "gp_record"
    assert frailty["current"]["recorded_by"] == "fhir-client:frailty-feed"
    assert "eFI 0.42" in frailty["current"]["note"]
    caseload = gateway.client.get("/api/v1/caseload", headers=nurse).json()
    row = next(row for row in caseload["rows"] if row["person_id"] == ada)
    assert row["frailty"] == "severe"

    finding = {"coding": [{"system": "http://snomed.info/sct", "code": "925791000000100", "display": "Mild frailty"}]}
    mild = _efi({"reference": f"Patient/person-{ada}"}, code=finding)
    del mild["valueQuantity"]
    assert gateway.client.post("/fhir/Observation", headers=headers, json=mild).status_code == 200
    assert gateway.client.get(f"/api/v1/patients/{ada}/frailty", headers=nurse).json()["current"]["category"] == "mild"
    changes = gateway.audit("change_frailty", "fhir-client:frailty-feed")
    assert [json.loads(row.detail)["after"] for row in changes] == ["severe", "mild"]
    assert len(gateway.audit("fhir_write", "fhir-client:frailty-feed")) == 2


@pytest.mark.parametrize(("change", "status"), [
    ({"valueQuantity": {"value": 1.5}}, 422),
    ({"status": "preliminary"}, 422),
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "2708-6"}]}}, 422),
    ({"subject": {"reference": "Patient/person-999999"}}, 422),
    ({"resourceType": "Patient"}, 422),
    ({"status": "not-a-status"}, 422),
])
def test_what_is_not_an_efi_changes_nothing(gateway: Gateway, change: dict[str, Any], status: int) -> None:
    ada = gateway.world.people["ada"]
    headers = {"Authorization": f"Bearer {gateway.token(gateway.feed_key, 'frailty-feed', alg='ES256', kid='feed-1')}"}
    body = {**_efi({"reference": f"Patient/person-{ada}"}), **change}
    outcome_of(gateway.client.post("/fhir/Observation", headers=headers, json=body), status)
    frailty = gateway.client.get(f"/api/v1/patients/{ada}/frailty", headers=bearer(gateway.client, "nurse")).json()
    assert frailty["current"] is None


# ---------------------------------------------------------------------------------------------
# Registration

def test_registration_refuses_what_would_not_work_and_is_audited(gateway: Gateway) -> None:
    private = gateway.gp_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with gateway.sessions() as session:
        for fields, message in (
            ({"public_key": private}, "private key"),
            ({"public_key": _public_pem(small)}, "2048"),
            ({"public_key": "not a key"}, "neither"),
            ({"scopes": ["patient/Observation.read"]}, "scopes"),
            ({"scopes": []}, "scopes"),
            ({"client_id": "gp-surgery"}, "taken"),
            ({"person_ids": [999999]}, "no person"),
        ):
            values: dict[str, Any] = {"client_id": "new-client", "name": "New", "public_key": _public_pem(_rsa()),
                                      "scopes": ["system/Patient.read"], "person_ids": None, **fields}
            with pytest.raises(admin.AdminError, match=message):
                admin.add_fhir_client(session, **values)
        session.rollback()
    registered = gateway.audit("fhir_client_registered")
    assert [json.loads(row.detail)["client"] for row in registered] == ["gp-surgery", "ada-only", "frailty-feed"]
    assert registered[1].person_id == gateway.world.people["ada"]


# ---------------------------------------------------------------------------------------------
# The walk-through of docs/interoperability.md, over a real socket

def test_a_clinical_system_reads_a_record_step_by_step_over_http(database_url: str) -> None:
    app, engine, world = api_app(database_url, allow_test_nhs_numbers=True)
    sessions: sessionmaker[Session] = app.state.centre.sessions
    key = _rsa()
    with sessions() as session, session.begin():
        session.get_one(Person, world.people["ada"]).nhs_number = ADA_NHS
        for minutes in range(7):
            _reading(session, world.people["ada"], "spo2", 94 + minutes % 3, "%", 5 + minutes)
        admin.add_fhir_client(session, client_id="epr-1", name="County hospital EPR", public_key=_public_pem(key),
                              scopes=["system/Patient.read", "system/Observation.read"], person_ids=None)
    try:
        with served(app) as url, httpx.Client(base_url=url, timeout=30) as http:  # a loaded machine: not a speed test
            statement = http.get("/fhir/metadata").json()
            token_url = statement["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"]
            assert token_url == f"{url}/fhir/token"
            granted = http.post(token_url, data=token_form(assertion(key, "epr-1", aud=token_url)))
            assert granted.status_code == 200, granted.text
            headers = {"Authorization": f"Bearer {granted.json()['access_token']}",
                       "X-Request-Purpose": "admission"}
            found = http.get("/fhir/Patient", params={"identifier": f"{NHS}|{ADA_NHS}"}, headers=headers).json()
            patient_id = found["entry"][0]["resource"]["id"]
            page_url: str | None = f"{url}/fhir/Observation?patient=Patient/{patient_id}&code=59408-5&_count=3"
            seen = []
            while page_url:
                page = http.get(page_url, headers=headers).json()
                parse(page)
                seen += [entry["resource"]["valueQuantity"]["value"] for entry in page.get("entry", [])]
                page_url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
            assert len(seen) == 7
            ada_audit = http.get(f"/api/v1/patients/{world.people['ada']}/audit",
                                 headers=bearer(http, "ada")).json()
            reads = [row for row in ada_audit if row["action"] == "fhir_read"]
            assert len(reads) == 1 + 3  # the Patient search, then three pages
            assert {json.loads(row["detail"])["request_purpose"] for row in reads} == {"admission"}
    finally:
        engine.dispose()


def test_telecare_admin_registers_and_deactivates_a_client(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from telecare.cli import main

    monkeypatch.setenv("TELECARE_DATABASE_URL", f"sqlite:///{tmp_path / 'centre.db'}")
    monkeypatch.setenv("TELECARE_JWT_SECRET", secrets.token_urlsafe(48))
    monkeypatch.setenv("TELECARE_MQTT_PASSWORD", secrets.token_urlsafe(16))
    key_file = tmp_path / "gp.pem"
    key_file.write_text(_public_pem(_rsa()))
    assert main(["admin", "fhir-client", "add", "gp-1", "--name", "Orchard Surgery", "--public-key", str(key_file),
                 "--scope", "system/Patient.read", "--scope", "system/Observation.read"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "client_id": "gp-1", "scopes": ["system/Observation.read", "system/Patient.read"], "people": "all",
        "token_url_path": "/fhir/token"}
    assert main(["admin", "fhir-client", "add", "gp-1", "--name", "Again", "--public-key", str(key_file),
                 "--scope", "system/Patient.read"]) == 2
    assert "taken" in capsys.readouterr().err
    assert main(["admin", "fhir-client", "deactivate", "gp-1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"client_id": "gp-1", "active": False}
