"""Unit tests hash passwords with Argon2's cheapest parameters. The real cost (64 MiB and
three passes, a quarter of a second or more a hash on a small machine) is there for an
attacker with a stolen database, not for the hundred accounts these tests create and log
in to; the hashes are still Argon2id, checked the same way. Integration tests keep the
centre's real parameters."""

import sys

import pytest
from argon2 import PasswordHasher

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    if "centre_app.auth" in sys.modules:  # imported while collecting; a hub-only run never needs it
        monkeypatch.setattr(sys.modules["centre_app.auth"], "_hasher", CHEAP_HASHER)
