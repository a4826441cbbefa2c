"""A local HTTP server standing in for GOV.UK Notify's API (`/v2/notifications/sms` and `/email`),
on loopback, checking each request as Notify does and answering as Notify answers.

Checks (each failure is kept in `NotifyStandIn.problems` and answered as Notify would):
- the Authorization header is "Bearer <JWT>", HS256, signed with the service's secret key, its
  `iss` the service id and its `iat` within 30 s of now (Notify's bound) → else 403 AuthError;
- the body is JSON with `template_id` and the recipient (`phone_number` or `email_address`),
  and `personalisation` an object of strings → else 400 BadRequestError / ValidationError.

Answers: 201 with the notification's id (Notify's response shape), unless the test queued
another status in `answers` (400, 403, 429, 500, …), answered with Notify's error body
{"errors": [{"error": …, "message": …}], "status_code": …}.
"""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"test_key-{SERVICE_ID}-{SECRET}"
SMS_TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
EMAIL_TEMPLATE = "a7b3e1c2-5d4f-4e6a-9b8c-7d6e5f4a3b2c"
ERRORS = {400: ("BadRequestError", "Can't send to this recipient using a team-only API key"),
          403: ("AuthError", "Invalid token: API key not found"),
          429: ("RateLimitError", "Exceeded rate limit for key type TEAM of 3000 requests per 60 seconds"),
          500: ("Exception", "Internal server error")}


@dataclass
class Received:
    """One request Notify was sent: its path, JSON body and the JWT's claims (when it verified)."""

    path: str
    body: dict[str, Any]
    claims: dict[str, Any]


@dataclass
class NotifyStandIn:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    """Statuses to answer, in order, before going back to 201."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _check_token(header: str | None) -> tuple[dict[str, Any] | None, str]:
    if header is None or not header.startswith("Bearer "):
        return None, "Unauthorized: authentication token must be provided"
    token = header[len("Bearer "):]
    try:
        if jwt.get_unverified_header(token).get("alg") != "HS256":
            return None, "Invalid token: algorithm used is not HS256"
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})
    except jwt.PyJWTError as e:
        return None, f"Invalid token: signature ({e})"
    if claims.get("iss") != SERVICE_ID:
        return None, "Invalid token: service not found"
    iat = claims.get("iat")
    if not isinstance(iat, int) or abs(time.time() - iat) > 30:
        return None, "Error: Your system clock must be accurate to within 30 seconds"
    return claims, ""


def _check_body(path: str, body: object) -> str:
    if not isinstance(body, dict):
        return "ValidationError: the body is not a JSON object"
    recipient = "phone_number" if path.endswith("/sms") else "email_address"
    for name in (recipient, "template_id"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"ValidationError: {name} is a required property"
    personalisation = body.get("personalisation", {})
    if not isinstance(personalisation, dict) or not all(isinstance(v, str) for v in personalisation.values()):
        return "ValidationError: personalisation must be an object of strings"
    if "reference" in body and not isinstance(body["reference"], str):
        return "ValidationError: reference must be a string"
    return ""


@contextmanager
def notify_standin() -> Iterator[NotifyStandIn]:
    """A Notify stand-in on a free loopback port, for the duration of the block."""
    state = NotifyStandIn()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path not in ("/v2/notifications/sms", "/v2/notifications/email"):
                return self._error(404, "ResourceNotFound", "Not found")
            claims, problem = _check_token(self.headers.get("Authorization"))
            if claims is None:
                state.problems.append(problem)
                return self._error(403, "AuthError", problem)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            problem = _check_body(self.path, body)
            if problem:
                state.problems.append(problem)
                return self._error(400, "ValidationError", problem)
            assert isinstance(body, dict)
            with lock:
                state.received.append(Received(self.path, body, claims))
                status = state.answers.pop(0) if state.answers else 201
            if status != 201:
                error, message = ERRORS.get(status, ("Exception", "error"))
                return self._error(status, error, message)
            notification_id = str(uuid.uuid4())
            content = ({"body": body["personalisation"].get("body", ""), "from_number": "Telecare"}
                       if self.path.endswith("/sms") else
                       {"subject": body["personalisation"].get("subject", ""),
                        "body": body["personalisation"].get("body", ""), "from_email": "alerts@notify.test"})
            self._json(201, {"id": notification_id, "reference": body.get("reference"), "content": content,
                             "uri": f"{state.base_url}/v2/notifications/{notification_id}",
                             "template": {"id": body["template_id"], "version": 1,
                                          "uri": f"{state.base_url}/v2/template/{body['template_id']}"}})

        def _error(self, status: int, error: str, message: str) -> None:
            self._json(status, {"errors": [{"error": error, "message": message}], "status_code": status})

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            answer = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
