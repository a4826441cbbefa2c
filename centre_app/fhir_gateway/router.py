"""The FHIR gateway's HTTP routes, under `/fhir` (`docs/interoperability.md`).

| route | scope | what |
|---|---|---|
| `GET /fhir/metadata` | none | the CapabilityStatement |
| `POST /fhir/token` | none (a signed assertion) | an access token (`tokens`) |
| `GET /fhir/Patient/{id}`, `GET /fhir/Patient?identifier=…` | `system/Patient.read` | the person |
| `GET /fhir/Observation/{id}`, `GET /fhir/Observation?patient=…&code=…&date=…` | `system/Observation.read` | vitals |
| `GET /fhir/{Flag,DetectedIssue,Communication}/{id}`, `…?patient=…` | `system/<type>.read` | the record's alerts |
| `POST /fhir/Observation` | `system/Observation.write` | an eFI from the GP record (`frailty_import`) |

Every answer is `application/fhir+json`; every error an OperationOutcome with its HTTP code (400
a search or body the gateway cannot take, 401 no or a bad access token, 403 a scope the client
lacks or a person outside its filter, 404 no such resource, 422 an Observation that is not an
eFI), except the token endpoint's, which are OAuth2's (`{"error": ..., "error_description": ...}`).

Each search names one person (`patient`, or `identifier` for Patient): there is no listing of
everyone. Each read is audited (action `fhir_read`, actor `fhir-client:<client id>`, one row for
the person concerned, detail JSON: client, name, purpose, the request's own purpose from the
`X-Request-Purpose` header if sent, the request, and the ids returned): the person sees it under
"who looked at my data" (`GET /api/v1/patients/{id}/audit`). Each refusal after the token is
checked is audited (action `refused`), and so is each token issued or refused.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementRest,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementRestSecurity,
    CapabilityStatementSoftware,
)
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from fhir.resources.R4B.resource import Resource
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from alerting import fhir
from centre_app.api.deps import Db, centre
from centre_app.fhir_gateway import frailty_import, resources, tokens
from centre_app.fhir_gateway.clients import ACTOR_PREFIX, FRAILTY_WRITE_SCOPE, MAX_PURPOSE, ClientView
from centre_app.fhir_gateway.resources import RecordType, SearchError
from monitoring_centre import audit, frailty
from monitoring_centre.frailty import FrailtySource
from monitoring_centre.nhs_number import InvalidNhsNumber
from monitoring_centre.storage import Person, begin_read, utc_now

FHIR_JSON = "application/fhir+json"
PURPOSE_HEADER = "X-Request-Purpose"
"""Optional: why this request is made ("medication review"), recorded with the client's own purpose."""
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               422: "processing", 500: "exception"}
"""The OperationOutcome issue code for each HTTP status the gateway answers with."""


class FhirError(Exception):
    """An answer the gateway gives as an OperationOutcome: `status`, `code` (the issue type,
    http://hl7.org/fhir/issue-type), `message` (its diagnostics)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


def outcome(status_code: int, message: str, *, severity: str = "error",
            headers: dict[str, str] | None = None) -> Response:
    body = OperationOutcome(issue=[OperationOutcomeIssue(severity=severity, code=ISSUE_CODES.get(status_code, "invalid")
                                                         if severity == "error" else "informational",
                                                         diagnostics=message)])
    return Response(body.model_dump_json(), status_code=status_code, media_type=FHIR_JSON, headers=headers)


def fhir_response(resource: Resource, status_code: int = 200) -> Response:
    return Response(resource.model_dump_json(), status_code=status_code, media_type=FHIR_JSON,
                    headers={"Cache-Control": "no-store"})


class FhirRoute(APIRoute):
    """A route whose refusals are OperationOutcomes: `FhirError`, FastAPI's own validation
    errors (400) and any other HTTP error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except FhirError as problem:
                return outcome(problem.status_code, problem.message, headers=problem.headers)
            except RequestValidationError as problem:
                first = problem.errors()[0] if problem.errors() else {"loc": (), "msg": "invalid request"}
                where = ".".join(str(part) for part in first.get("loc", ()))
                return outcome(400, f"{where}: {first.get('msg')}")
            except HTTPException as problem:
                return outcome(problem.status_code, str(problem.detail))

        return guarded


router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, include_in_schema=False)
"""Described by its CapabilityStatement (`GET /fhir/metadata`), the FHIR way, not in `/openapi.json`:
its errors are OperationOutcomes, not the console API's `ErrorOut`."""


def base_url(request: Request) -> str:
    """The gateway's base URL: the `fhir_gateway_base_url` setting, else this request's own."""
    configured = centre(request).settings.fhir_gateway_base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/") + "/fhir"


def token_url(request: Request) -> str:
    """What a client assertion's `aud` must be."""
    return base_url(request) + "/token"


def _request_line(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.method} {request.url.path}{query}"


def _purpose_header(request: Request) -> str | None:
    value = request.headers.get(PURPOSE_HEADER)
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_PURPOSE or not value.isprintable():
        raise FhirError(400, f"{PURPOSE_HEADER}: 1-{MAX_PURPOSE} printable characters")
    return value.strip()


def gateway_client(request: Request, session: Db) -> ClientView:
    """The client of the request's bearer token, or 401 (not audited: no client is known)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FhirError(401, "a bearer access token is needed (POST /fhir/token)", {"WWW-Authenticate": "Bearer"})
    key = tokens.access_key(centre(request).settings.jwt_secret.get_secret_value())
    try:
        client = tokens.caller(session, token.strip(), key=key)
    except tokens.TokenRefused as refused:
        raise FhirError(401, refused.description, {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    _purpose_header(request)
    return client


Client = Annotated[ClientView, Depends(gateway_client)]


def refuse(request: Request, session: Session, actor: str, status_code: int, message: str,
           person_id: int | None) -> FhirError:
    """Audits the refusal (action `refused`, the person concerned, the request and the answer),
    commits, and returns the FhirError to raise."""
    session.rollback()
    audit.record(session, actor[:100], "refused", [person_id], f"{_request_line(request)}: {status_code} {message}")
    session.commit()
    return FhirError(status_code, message)


def need_scope(request: Request, session: Session, client: ClientView, scope: str) -> None:
    if scope not in client.scopes:
        raise refuse(request, session, client.actor, 403, f"the access token lacks scope {scope}", None)


def visible(request: Request, session: Session, client: ClientView, person_id: int | None) -> Person | None:
    """The person, if held and within the client's filter. None when there is no such person;
    403, audited with the person, when the client may not see them."""
    person = session.get(Person, person_id) if person_id is not None else None
    if person is None:
        return None
    if not client.may_see(person.id):
        raise refuse(request, session, client.actor, 403, "this client may not see this person", person.id)
    return person


def audit_read(request: Request, session: Session, client: ClientView, person_id: int | None,
               returned: list[str]) -> None:
    """One `fhir_read` row for the person (None when nobody matched), committed."""
    detail = {"client": client.client_id, "name": client.name, "purpose": client.purpose,
              "request_purpose": _purpose_header(request), "request": _request_line(request), "returned": returned}
    audit.record(session, client.actor, "fhir_read", [person_id], json.dumps(detail, sort_keys=True))
    session.commit()


def _refs(items: list[Resource]) -> list[str]:
    return [f"{r.get_resource_type()}/{r.id}" for r in items]


# ------------------------------------------------------------------------------------------
# Search parameters

def _params(request: Request, allowed: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise FhirError(400, f"search parameter {name!r} is not supported here; supported: "
                            f"{', '.join(sorted(allowed))}")
        found.setdefault(name, []).append(value)
    return found


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise FhirError(400, f"{name} is given more than once")
    return values[0] if values else None


def _number(params: dict[str, list[str]], name: str, default: int) -> int:
    value = _one(params, name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise FhirError(400, f"{name} is a whole number from 0")
    return int(value)


def _paging(params: dict[str, list[str]]) -> tuple[int, int]:
    """(count, offset): `_count` (default 50, at most 100) and `_offset` (from 0)."""
    return (min(_number(params, "_count", resources.DEFAULT_COUNT), resources.MAX_COUNT),
            _number(params, "_offset", 0))


def _patient_param(params: dict[str, list[str]]) -> int | None:
    """The person a search names (`patient` or `subject`); 400 when it names none or two."""
    named = [v for name in ("patient", "subject") for v in params.get(name, [])]
    if len(named) != 1:
        raise FhirError(400, "a search names one patient: patient=Patient/person-{id}")
    person_id = resources.person_of_reference(named[0])
    if person_id is None:
        raise FhirError(400, "patient: write Patient/person-{id}")
    return person_id


def _page_urls(request: Request, params: dict[str, list[str]], offset: int, count: int, shown: int, total: int,
               extra: dict[str, str]) -> tuple[str, str | None]:
    """(self, next): this page's URL and the next one's, None on the last page."""
    pairs = [(name, value) for name, values in params.items() if name not in ("_offset", *extra)
             for value in values]
    here = f"{base_url(request)}/{request.url.path.rsplit('/', 1)[-1]}"
    self_url = here + "?" + urlencode([*pairs, *extra.items(), ("_offset", str(offset))])
    if count == 0 or offset + shown >= total:
        return self_url, None
    return self_url, here + "?" + urlencode([*pairs, *extra.items(), ("_offset", str(offset + count))])


# ------------------------------------------------------------------------------------------
# Routes

SEARCH_PARAMS: dict[str, list[tuple[str, str, str]]] = {
    "Patient": [("identifier", "token", "the NHS number: https://fhir.nhs.uk/Id/nhs-number|{number}"),
                ("_id", "token", "person-{id}")],
    "Observation": [("patient", "reference", "Patient/person-{id} (required)"),
                    ("code", "token", "LOINC 2708-6 or 59408-5 (SpO2), 8867-4 (pulse)"),
                    ("date", "date", "when measured; prefixes eq, ge, le, gt, lt")],
    **{kind.value: [("patient", "reference", "Patient/person-{id} (required)")] for kind in RecordType},
}
PROFILES = {"Patient": [fhir.UK_CORE_PATIENT], "Observation": [fhir.UK_CORE_OXYGEN_SATURATION, fhir.UK_CORE_HEART_RATE]}


@router.get("/metadata", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def metadata(request: Request) -> Response:
    """The CapabilityStatement: what the gateway serves, and how to get a token (no token needed)."""
    security = CapabilityStatementRestSecurity(
        service=[CodeableConcept(coding=[Coding(system="http://terminology.hl7.org/CodeSystem/restful-security-service",
                                                code="SMART-on-FHIR")])],
        description="OAuth2 client credentials with a signed JWT client assertion (RFC 7523; SMART Backend "
                    "Services): POST the assertion to the token URL for a short-lived bearer token. Scopes: "
                    "system/<Resource>.read, system/Observation.write (eFI frailty only).",
        extension=[Extension(url="http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                             extension=[Extension(url="token", valueUri=token_url(request))])],
    )
    served = []
    for kind, params in SEARCH_PARAMS.items():
        interactions = [CapabilityStatementRestResourceInteraction(code=code) for code in ("read", "search-type")]
        if kind == "Observation":
            interactions.append(CapabilityStatementRestResourceInteraction(
                code="create", documentation="eFI frailty category from the GP record only "
                                             "(scope system/Observation.write)"))
        served.append(CapabilityStatementRestResource(
            type=kind, supportedProfile=PROFILES.get(kind), interaction=interactions,
            searchParam=[CapabilityStatementRestResourceSearchParam(name=name, type=kind_, documentation=doc)
                         for name, kind_, doc in params]))
    statement = CapabilityStatement(
        status="active", date=utc_now(), kind="instance", fhirVersion="4.0.1", format=["application/fhir+json"],
        software=CapabilityStatementSoftware(name="Telecare monitoring centre FHIR gateway"),
        implementation={"description": "Read-only FHIR R4 gateway of a telecare monitoring centre",
                        "url": base_url(request)},
        rest=[CapabilityStatementRest(mode="server", security=security, resource=served)],
    )
    return fhir_response(statement)


def _oauth_error(error: str, description: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status_code,
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/token", response_class=JSONResponse)
def token(request: Request, session: Db,
          grant_type: Annotated[str | None, Form()] = None,
          client_assertion_type: Annotated[str | None, Form()] = None,
          client_assertion: Annotated[str | None, Form()] = None,
          client_id: Annotated[str | None, Form()] = None,
          scope: Annotated[str | None, Form()] = None) -> JSONResponse:
    """OAuth2 client credentials with a JWT assertion (`tokens`): 200 `{"access_token",
    "token_type": "Bearer", "expires_in" (s), "scope"}`, or an OAuth2 error (400, 401). Each
    token issued is audited `fhir_token`; each refusal `refused` (the client as claimed)."""
    state = centre(request)
    now = utc_now()
    try:
        if grant_type != tokens.GRANT_TYPE:
            raise tokens.TokenRefused("unsupported_grant_type", "grant_type must be client_credentials", 400, client_id)
        if client_assertion_type != tokens.ASSERTION_TYPE or not client_assertion:
            raise tokens.TokenRefused("invalid_request", f"client_assertion_type must be {tokens.ASSERTION_TYPE}, "
                                      "with a client_assertion", 400, client_id)
        client = tokens.verify_assertion(session, client_assertion, token_url=token_url(request), now=now,
                                         client_id=client_id)
        issued = tokens.issue(client, scope, key=tokens.access_key(state.settings.jwt_secret.get_secret_value()),
                              ttl_s=state.settings.fhir_token_ttl_s, now=now)
    except tokens.TokenRefused as refused:
        session.rollback()
        claimed = refused.client_id or "unknown"
        audit.record(session, (ACTOR_PREFIX + claimed)[:100], "refused", [None],
                     f"POST {request.url.path}: {refused.status} {refused.error}: {refused.description} "
                     "(client as claimed, not verified)")
        session.commit()
        return _oauth_error(refused.error, refused.description, refused.status)
    audit.record(session, ACTOR_PREFIX + client.client_id, "fhir_token", [None],
                 json.dumps({"client": client.client_id, "scope": issued.scope, "expires_in": issued.expires_in}))
    session.commit()
    return JSONResponse({"access_token": issued.access_token, "token_type": "Bearer", "expires_in": issued.expires_in,
                         "scope": issued.scope}, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _patient(request: Request, person: Person) -> Resource:
    try:
        return resources.patient(person, allow_test_nhs_numbers=centre(request).settings.allow_test_nhs_numbers)
    except InvalidNhsNumber:
        raise FhirError(500, "the person's stored NHS number fails the check: their record is withheld") from None


@router.get("/Patient/{resource_id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def read_patient(resource_id: str, request: Request, client: Client, session: Db) -> Response:
    """The person `person-{id}`, UK Core Patient."""
    need_scope(request, session, client, "system/Patient.read")
    person = visible(request, session, client, resources.row_id(resource_id, "person-"))
    if person is None:
        raise FhirError(404, f"no Patient/{resource_id}")
    built = _patient(request, person)
    audit_read(request, session, client, person.id, _refs([built]))
    return fhir_response(built)


@router.get("/Patient", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_patient(request: Request, client: Client, session: Db) -> Response:
    """Patients by NHS number (`identifier=https://fhir.nhs.uk/Id/nhs-number|{number}`) or `_id`:
    a searchset of none or one."""
    need_scope(request, session, client, "system/Patient.read")
    params = _params(request, {"identifier", "_id", "_count", "_offset"})
    identifier, by_id = _one(params, "identifier"), _one(params, "_id")
    if (identifier is None) == (by_id is None):
        raise FhirError(400, "search Patient by identifier (the NHS number) or by _id, one of them")
    try:
        found = resources.person_by_identifier(session, identifier) if identifier is not None else \
            session.get(Person, resources.row_id(by_id or "", "person-") or 0)
    except SearchError as problem:
        raise FhirError(400, str(problem)) from None
    person = visible(request, session, client, found.id if found is not None else None)
    count, offset = _paging(params)
    matches = [_patient(request, person)] if person is not None else []
    shown = matches[offset:offset + count]
    self_url, next_url = _page_urls(request, params, offset, count, len(shown), len(matches), {})
    audit_read(request, session, client, person.id if person is not None else None, _refs(shown))
    return fhir_response(resources.searchset(shown, base=base_url(request), total=len(matches), self_url=self_url,
                                             next_url=next_url))


@router.get("/Observation/{resource_id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def read_observation(resource_id: str, request: Request, client: Client, session: Db) -> Response:
    """A reading `reading-{id}` (SpO2 or pulse), UK Core vital signs."""
    need_scope(request, session, client, "system/Observation.read")
    found = resources.observation_by_id(session, resource_id)
    if found is None:
        raise FhirError(404, f"no Observation/{resource_id}")
    person_id, built = found
    visible(request, session, client, person_id)
    audit_read(request, session, client, person_id, _refs([built]))
    return fhir_response(built)


@router.get("/Observation", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_observation(request: Request, client: Client, session: Db) -> Response:
    """One person's SpO2 and pulse, newest first: `patient` (required), `code`, `date` (repeatable,
    e.g. `date=ge2026-11-01&date=le2026-11-30`), `_count`, `_offset`. A read-only transaction
    (`begin_read`): a long search must not hold up the alarm path."""
    need_scope(request, session, client, "system/Observation.read")
    params = _params(request, {"patient", "subject", "code", "date", "_count", "_offset", "_snapshot"})
    person = visible(request, session, client, _patient_param(params))
    count, offset = _paging(params)
    try:
        code = _one(params, "code")
        metrics = resources.metrics_of_codes(code) if code is not None else None
        bounds = [resources.date_bound(value) for value in params.get("date", [])]
    except SearchError as problem:
        raise FhirError(400, str(problem)) from None
    snapshot = _number(params, "_snapshot", -1)
    if person is None:
        page = resources.Page([], 0, 0)
    else:
        session.commit()
        begin_read(session)
        page = resources.observations(session, person.id, metrics, bounds, offset=offset, count=count,
                                      snapshot=None if snapshot < 0 else snapshot)
        session.commit()
    self_url, next_url = _page_urls(request, params, offset, count, len(page.resources), page.total,
                                    {"_snapshot": str(page.snapshot)})
    audit_read(request, session, client, person.id if person is not None else None, _refs(page.resources))
    return fhir_response(resources.searchset(page.resources, base=base_url(request), total=page.total,
                                             self_url=self_url, next_url=next_url))


@router.post("/Observation", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
async def create_observation(request: Request, client: Client, session: Db) -> Response:
    """An eFI frailty category from the GP record (`frailty_import`): sets the person's category
    with source `gp_record`, recorded by the client. 200 with an informational OperationOutcome
    naming the category (the category is kept, not the Observation); 422 for an Observation
    that is not an eFI or whose person is not held; 403 without `system/Observation.write` or
    for a person outside the client's filter (audited)."""
    need_scope(request, session, client, FRAILTY_WRITE_SCOPE)
    try:
        body: Any = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise FhirError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise FhirError(400, "the body must be a FHIR Observation")
    try:
        observation, result = frailty_import.parse(body)
    except frailty_import.ImportRefused as problem:
        raise FhirError(422, str(problem)) from None
    person = frailty_import.person_of(session, observation)
    if person is None:
        raise FhirError(422, "the Observation's subject is not a person this centre holds")
    visible(request, session, client, person.id)
    note = f"{result.evidence}; from {client.name}"[:frailty.MAX_NOTE]
    entry = frailty.set_category(session, person.id, result.category, by=client.actor[:100],
                                 source=FrailtySource.GP_RECORD, note=note)
    audit.record(session, client.actor, "fhir_write", [person.id], json.dumps(
        {"client": client.client_id, "name": client.name, "purpose": client.purpose,
         "request_purpose": _purpose_header(request), "request": _request_line(request),
         "wrote": f"frailty category {entry.category.value} ({result.evidence})"}, sort_keys=True))
    session.commit()
    return outcome(status.HTTP_200_OK, f"frailty category set to {entry.category.value} from the GP record "
                   f"({result.evidence})", severity="information")


def _record_routes(kind: RecordType) -> None:
    scope = f"system/{kind.value}.read"

    def read(resource_id: str, request: Request, client: Client, session: Db) -> Response:
        need_scope(request, session, client, scope)
        person = visible(request, session, client, resources.person_of_record_resource(session, kind, resource_id))
        found = None
        if person is not None:
            session.commit()
            begin_read(session)
            found = next((r for r in resources.record_resources(session, person.id, kind) if r.id == resource_id),
                         None)
            session.commit()
        if person is None or found is None:
            raise FhirError(404, f"no {kind.value}/{resource_id}")
        audit_read(request, session, client, person.id, _refs([found]))
        return fhir_response(found)

    def search(request: Request, client: Client, session: Db) -> Response:
        need_scope(request, session, client, scope)
        params = _params(request, {"patient", "subject", "_count", "_offset"})
        person = visible(request, session, client, _patient_param(params))
        count, offset = _paging(params)
        matches: list[Resource] = []
        if person is not None:
            session.commit()
            begin_read(session)
            matches = resources.record_resources(session, person.id, kind)
            session.commit()
        shown = matches[offset:offset + count]
        self_url, next_url = _page_urls(request, params, offset, count, len(shown), len(matches), {})
        audit_read(request, session, client, person.id if person is not None else None, _refs(shown))
        return fhir_response(resources.searchset(shown, base=base_url(request), total=len(matches),
                                                 self_url=self_url, next_url=next_url))

    read.__doc__ = f"A {kind.value} of the record the centre writes for each alert state."
    search.__doc__ = f"One person's {kind.value} resources from their record (`patient` required)."
    router.add_api_route(f"/{kind.value}/{{resource_id}}", read, methods=["GET"], response_class=Response,
                         name=f"read_{kind.value}", responses={200: {"content": {FHIR_JSON: {}}}})
    router.add_api_route(f"/{kind.value}", search, methods=["GET"], response_class=Response,
                         name=f"search_{kind.value}", responses={200: {"content": {FHIR_JSON: {}}}})


for _kind in RecordType:
    _record_routes(_kind)
