"""OAuth2 client credentials for the FHIR gateway: a signed JWT assertion in, a short-lived
access token out.

The client authenticates with a JWT it signs with its own private key (RFC 7523 section 2.2,
`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`), as NHS
England's API platform asks for application-restricted access and SMART Backend Services
does:

- header: `alg` one of `ASSERTION_ALGORITHMS` (never `none`, never an HMAC), `kid` to choose
  a key of a registered JWKS;
- claims: `iss` = `sub` = the client id, `aud` = the token endpoint's URL, `exp` at most
  `MAX_ASSERTION_LIFETIME_S` (5 minutes) ahead, `jti` unique: each `jti` is accepted once
  (kept in `fhir_assertion_ids` until the assertion would have expired anyway).

Every refusal is a `TokenRefused` with the OAuth2 error code (RFC 6749 section 5.2): 400
`invalid_request` / `unsupported_grant_type` / `invalid_scope`, 401 `invalid_client`.

The access token is a JWT (HS256) signed with a key derived from the centre's `jwt_secret`
for this one use (`access_key`), so a console sign-in token is never a gateway token and
never the reverse. It carries the client id and its scopes and lives `fhir_token_ttl_s`
(5 minutes by default); each use looks the client up again, so a deactivated client's
tokens stop working at once.
"""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from centre_app.fhir_gateway.clients import ClientView, FhirAssertionId, FhirClient, active_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_TYPE = "client_credentials"
ASSERTION_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
"""Asymmetric signatures only. NHS England's platform uses RS512; ES256 is SMART's other choice."""
MAX_ASSERTION_LIFETIME_S = 300
"""An assertion expires at most 5 minutes after it is made (NHS England's limit)."""
CLOCK_SKEW_S = 10
"""How far the client's clock may be from ours, for `exp`."""
MAX_JTI = 255
GATEWAY_ISSUER = "telecare-centre"
GATEWAY_AUDIENCE = "telecare-fhir-gateway"


class TokenRefused(Exception):
    """A refused token request or access token: `error` (RFC 6749's code), `description`
    (safe to tell the caller), `status` (HTTP), `client_id` (as claimed, when known)."""

    def __init__(self, error: str, description: str, status: int = 401, client_id: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.client_id = client_id


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    """Seconds."""
    scope: str
    """The scopes granted, space-separated."""


def access_key(jwt_secret: str) -> bytes:
    """The key access tokens are signed with: HMAC-SHA256 of the centre's `jwt_secret` and this use."""
    return hmac.new(jwt_secret.encode(), b"telecare fhir gateway access tokens", hashlib.sha256).digest()


def _invalid_client(description: str, client_id: str | None) -> TokenRefused:
    return TokenRefused("invalid_client", description, 401, client_id)


def _key_for(client: FhirClient, header: dict[str, Any]) -> Any:
    """The registered public key that should verify this assertion."""
    text = client.public_key.strip()
    if not text.startswith("{"):
        return load_pem_public_key(text.encode())
    keys = jwt.PyJWKSet.from_json(text).keys
    kid = header.get("kid")
    chosen = [key for key in keys if key.key_id == kid] if kid is not None else keys
    if len(chosen) != 1:
        raise _invalid_client("no single registered key matches the assertion's kid", client.client_id)
    return chosen[0].key


def verify_assertion(session: Session, assertion: str, *, token_url: str, now: datetime,
                     client_id: str | None = None) -> FhirClient:
    """The active client whose valid assertion this is; its `jti` is now used (flushed in a
    savepoint of `session`). `client_id`, when the request names one, must be the assertion's.
    Raises TokenRefused `invalid_client` (401) for: an unreadable assertion, a disallowed `alg`,
    an unknown or inactive client, a signature that does not verify with its key, a wrong `aud`,
    `iss` or `sub`, a missing claim, an expired assertion or one valid longer than 5 minutes,
    a `jti` used before."""
    try:
        header = jwt.get_unverified_header(assertion)
        claimed = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid_client("the client assertion is not a readable JWT", client_id) from None
    issuer = claimed.get("iss")
    if not isinstance(issuer, str):
        raise _invalid_client("the assertion has no iss", client_id)
    if client_id is not None and client_id != issuer:
        raise _invalid_client("client_id is not the assertion's iss", issuer)
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        raise _invalid_client(f"alg must be one of {', '.join(ASSERTION_ALGORITHMS)}", issuer)
    client = active_client(session, issuer)
    if client is None:
        raise _invalid_client("unknown or inactive client", issuer)
    try:
        claims = jwt.decode(assertion, _key_for(client, header), algorithms=[str(header["alg"])], audience=token_url,
                            issuer=client.client_id, leeway=CLOCK_SKEW_S,
                            options={"require": ["iss", "sub", "aud", "exp", "jti"]})
    except jwt.ExpiredSignatureError:
        raise _invalid_client("the assertion has expired", issuer) from None
    except jwt.InvalidAudienceError:
        raise _invalid_client(f"aud must be the token endpoint's URL, {token_url}", issuer) from None
    except jwt.InvalidSignatureError:
        raise _invalid_client("the signature does not verify with the client's registered key", issuer) from None
    except (jwt.PyJWTError, ValueError) as problem:
        raise _invalid_client(f"the assertion is not valid: {problem}", issuer) from None
    if claims.get("sub") != client.client_id:
        raise _invalid_client("sub must be the client id, as iss is", issuer)
    if int(claims["exp"]) > now.timestamp() + MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S:
        raise _invalid_client(f"exp is more than {MAX_ASSERTION_LIFETIME_S} s ahead", issuer)
    expires = datetime.fromtimestamp(int(claims["exp"]), now.tzinfo)
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise _invalid_client(f"jti is a string of 1-{MAX_JTI} characters", issuer)
    session.execute(delete(FhirAssertionId).where(FhirAssertionId.expires_at < now - timedelta(seconds=CLOCK_SKEW_S)))
    try:
        with session.begin_nested():
            session.add(FhirAssertionId(client_id=client.client_id, jti=jti,
                                        expires_at=expires + timedelta(seconds=CLOCK_SKEW_S)))
    except IntegrityError:
        raise _invalid_client("jti has been used before: make a new assertion for every request", issuer) from None
    return client


def issue(client: FhirClient, requested: str | None, *, key: bytes, ttl_s: int, now: datetime) -> IssuedToken:
    """An access token with the scopes asked for (`requested`, space-separated; all the client's
    when None or empty). Raises TokenRefused `invalid_scope` (400) for a scope it does not have."""
    granted = set(client.scopes)
    if requested and requested.strip():
        asked = set(requested.split())
        if not asked <= granted:
            raise TokenRefused("invalid_scope", f"not granted to this client: {' '.join(sorted(asked - granted))}",
                               400, client.client_id)
        granted = asked
    scope = " ".join(sorted(granted))
    claims = {"iss": GATEWAY_ISSUER, "aud": GATEWAY_AUDIENCE, "sub": client.client_id, "scope": scope,
              "iat": int(now.timestamp()), "exp": int(now.timestamp()) + ttl_s, "jti": str(uuid.uuid4())}
    return IssuedToken(jwt.encode(claims, key, algorithm="HS256"), ttl_s, scope)


def caller(session: Session, token: str, *, key: bytes) -> ClientView:
    """The client an access token belongs to, with the scopes it carries that the client still
    has. Raises TokenRefused `invalid_token` (401) for a token that is not ours, has expired, or
    whose client is unknown or inactive."""
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], audience=GATEWAY_AUDIENCE,
                            issuer=GATEWAY_ISSUER, options={"require": ["sub", "scope", "exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenRefused("invalid_token", "the access token has expired") from None
    except jwt.PyJWTError:
        raise TokenRefused("invalid_token", "not an access token of this gateway") from None
    client = active_client(session, str(claims["sub"]))
    if client is None:
        raise TokenRefused("invalid_token", "the client is unknown or inactive", client_id=str(claims["sub"]))
    view = ClientView.of(client)
    scopes = frozenset(str(claims["scope"]).split()) & view.scopes
    return ClientView(view.client_id, view.name, scopes, view.person_ids, view.purpose)
