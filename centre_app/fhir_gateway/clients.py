"""The systems registered to read from the FHIR gateway, and what each may do.

A client is a clinical system (a GP practice's system, a hospital's EPR, a shared care record)
registered by an administrator (`telecare admin fhir-client add`): its client id, the public
key its assertions are signed with (PEM, or a JWKS), its scopes, the people it may see (all, or
a list), the purpose of its reads, and whether it is active. Registering and deactivating are
audited (`fhir_client_registered`, `fhir_client_deactivated`).

Scopes are SMART on FHIR's system-level scopes (SMART App Launch 1.0, "backend services"): the
gateway acts for a system, never for a signed-in user, so `patient/...` and `user/...` scopes,
which need a launch context, are not offered. `system/<Resource>.read` reads and searches one
resource type; `system/Observation.write` is the one write, and the gateway takes only an eFI
frailty Observation with it (`frailty_import`).
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from monitoring_centre import audit
from monitoring_centre.storage import Base, Person, utc_now

READ_SCOPES = {
    "system/Patient.read": "Patient",
    "system/Observation.read": "Observation",
    "system/Flag.read": "Flag",
    "system/Communication.read": "Communication",
    "system/DetectedIssue.read": "DetectedIssue",
}
"""Each read scope and the one resource type it reads (read by id, and search)."""
FRAILTY_WRITE_SCOPE = "system/Observation.write"
"""The one write: an eFI frailty Observation from the GP record (`frailty_import`), nothing else."""
SCOPES = (*READ_SCOPES, FRAILTY_WRITE_SCOPE)
DEFAULT_PURPOSE = "direct care"
CLIENT_ID_PATTERN = r"[A-Za-z0-9._-]{3,64}"
ACTOR_PREFIX = "fhir-client:"
"""How a client appears in the audit log: "fhir-client:gp-surgery-1"."""
MAX_PURPOSE = 200


class FhirClient(Base):
    """A system registered to use the FHIR gateway (`docs/interoperability.md`)."""

    __tablename__ = "fhir_clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    """What its assertions carry as `iss` and `sub`."""
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(Text)
    """A PEM public key (RSA or EC), or a JWKS (`{"keys": [...]}`, chosen by the assertion's `kid`)."""
    scopes: Mapped[list[Any]]
    """Scopes from `SCOPES`, sorted."""
    person_ids: Mapped[list[Any] | None]
    """The people it may see; None: everyone the centre holds."""
    purpose: Mapped[str] = mapped_column(String(200), default=DEFAULT_PURPOSE)
    """Why it reads, written with each read to the audit log (a request may add its own)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class FhirAssertionId(Base):
    """A client assertion's `jti`, kept until the assertion expires: a `jti` is accepted once."""

    __tablename__ = "fhir_assertion_ids"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("fhir_clients.client_id"))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ClientRefused(ValueError):
    """A registration an administrator must correct; the message says what is wrong."""


@dataclass(frozen=True)
class ClientView:
    """A client as the gateway acts on it (detached from any session)."""

    client_id: str
    name: str
    scopes: frozenset[str]
    person_ids: frozenset[int] | None
    purpose: str

    @property
    def actor(self) -> str:
        return ACTOR_PREFIX + self.client_id

    def may_see(self, person_id: int) -> bool:
        return self.person_ids is None or person_id in self.person_ids

    @classmethod
    def of(cls, row: FhirClient) -> "ClientView":
        people = None if row.person_ids is None else frozenset(int(p) for p in row.person_ids)
        return cls(row.client_id, row.name, frozenset(str(s) for s in row.scopes), people, row.purpose)


def check_public_key(text: str) -> str:
    """The key as given, if it is a PEM RSA or EC public key or a JWKS of such keys; raises
    ClientRefused saying what is wrong. A private key is refused: the centre must never hold it."""
    stripped = text.strip()
    if "PRIVATE KEY" in stripped:
        raise ClientRefused("that is a private key: register the public key only, and keep the private key secret")
    if stripped.startswith("{"):
        try:
            keys = jwt.PyJWKSet.from_json(stripped).keys
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError) as problem:
            raise ClientRefused(f"the JWKS cannot be read: {problem}") from None
        for key in keys:
            if not isinstance(key.key, RSAPublicKey | EllipticCurvePublicKey):
                raise ClientRefused("a JWKS key must be an RSA or EC public key")
        return stripped
    try:
        pem = load_pem_public_key(stripped.encode())
    except ValueError:
        raise ClientRefused("the public key is neither a PEM public key nor a JWKS") from None
    if not isinstance(pem, RSAPublicKey | EllipticCurvePublicKey):
        raise ClientRefused("the public key must be RSA or EC")
    if isinstance(pem, RSAPublicKey) and pem.key_size < 2048:
        raise ClientRefused("an RSA key has at least 2048 bits")
    return stripped


def register(session: Session, *, client_id: str, name: str, public_key: str, scopes: list[str],
             person_ids: list[int] | None, purpose: str = DEFAULT_PURPOSE, by: str) -> FhirClient:
    """A new active client. Audited `fhir_client_registered` (one row per person of its filter,
    or one row with no person when it may see everyone), detail JSON with its id, name, scopes
    and purpose. Raises ClientRefused for a taken or malformed client id, an unknown scope, no
    scope, an unusable key, or a person who does not exist."""
    if not re.fullmatch(CLIENT_ID_PATTERN, client_id):
        raise ClientRefused(f"client id {client_id!r}: 3-64 letters, digits, '.', '_' or '-'")
    if session.scalar(select(FhirClient.id).where(FhirClient.client_id == client_id)) is not None:
        raise ClientRefused(f"client id {client_id!r} is taken")
    if not name.strip():
        raise ClientRefused("a client has a name")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ClientRefused(f"scopes: one or more of {', '.join(SCOPES)}" + (f"; not {unknown}" if unknown else ""))
    if not purpose.strip() or len(purpose) > MAX_PURPOSE:
        raise ClientRefused(f"a purpose is 1-{MAX_PURPOSE} characters")
    people = None
    if person_ids is not None:
        people = sorted(set(person_ids))
        missing = [p for p in people if session.get(Person, p) is None]
        if missing:
            raise ClientRefused(f"no person with id {missing[0]}")
    row = FhirClient(client_id=client_id, name=name.strip(), public_key=check_public_key(public_key),
                     scopes=sorted(set(scopes)), person_ids=people, purpose=purpose.strip(), active=True,
                     created_at=utc_now(), created_by=by)
    session.add(row)
    session.flush()
    audit.record(session, by, "fhir_client_registered", people if people else [None], json.dumps(
        {"client": client_id, "name": row.name, "scopes": row.scopes, "purpose": row.purpose,
         "people": "all" if people is None else people}, sort_keys=True))
    return row


def deactivate(session: Session, client_id: str, *, by: str) -> FhirClient:
    """The client may no longer get tokens, and its tokens stop working at once. Audited
    `fhir_client_deactivated`. Raises ClientRefused when there is no such client."""
    row = session.scalar(select(FhirClient).where(FhirClient.client_id == client_id))
    if row is None:
        raise ClientRefused(f"no client {client_id!r}")
    row.active = False
    audit.record(session, by, "fhir_client_deactivated", [None], json.dumps({"client": client_id}))
    return row


def active_client(session: Session, client_id: str) -> FhirClient | None:
    row = session.scalar(select(FhirClient).where(FhirClient.client_id == client_id))
    return row if row is not None and row.active else None
