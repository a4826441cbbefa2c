"""The sign-in throttle on its own: a growing wait by account and address, never a lock, and
nothing at all for the centre's own networks. A hand-moved clock: no test waits."""

import pytest

from centre_app.signin_throttle import (
    ACCOUNT_ALLOWANCE,
    ADDRESS_ALLOWANCE,
    MAX_WAIT_S,
    PAIR_ALLOWANCE,
    Admitted,
    Refused,
    SigninThrottle,
    wait_after,
)

ATTACKER = "203.0.113.9"
ELSEWHERE = "198.51.100.4"
FLOOR = "10.20.0.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> SigninThrottle:
    return SigninThrottle(["127.0.0.0/8", "10.20.0.0/16"], clock=clock)


def fail(throttle: SigninThrottle, account: str = "op-alice", address: str = ATTACKER) -> Admitted | Refused:
    attempt = throttle.admit(account, address)
    if isinstance(attempt, Admitted):
        throttle.settle(attempt, right_password=False)
    return attempt


def fail_through_waits(throttle: SigninThrottle, clock: Clock, times: int, account: str = "op-alice",
                       address: str = ATTACKER) -> list[int]:
    """Fail `times` checked attempts, each as soon as allowed; the waits asked for on the way."""
    waits = []
    for _ in range(times):
        attempt = fail(throttle, account, address)
        while isinstance(attempt, Refused):
            waits.append(attempt.retry_after_s)
            clock.now += attempt.retry_after_s
            attempt = fail(throttle, account, address)
    return waits


def test_the_wait_doubles_with_each_failure_past_the_allowance_up_to_a_cap() -> None:
    assert [wait_after(n, 3) for n in range(1, 8)] == [0, 0, 0, 1, 2, 4, 8]
    assert wait_after(40, 3) == MAX_WAIT_S == wait_after(10_000, 3)


def test_one_account_from_one_address_waits_longer_after_each_failure(throttle: SigninThrottle,
                                                                      clock: Clock) -> None:
    for _ in range(PAIR_ALLOWANCE + 1):
        assert isinstance(fail(throttle), Admitted)
    waits = fail_through_waits(throttle, clock, 6)
    assert waits == [1, 2, 4, 8, 16, 32]


def test_a_refusal_says_how_long_to_wait_and_comes_back_when_it_is_over(throttle: SigninThrottle,
                                                                         clock: Clock) -> None:
    fail_through_waits(throttle, clock, PAIR_ALLOWANCE + 3)  # the last failure asks for a 4 s wait
    refused = throttle.admit("op-alice", ATTACKER)
    assert isinstance(refused, Refused) and refused.retry_after_s == 4
    clock.now += 3.5
    still = throttle.admit("op-alice", ATTACKER)
    assert isinstance(still, Refused) and still.retry_after_s == 1
    clock.now += 0.5
    assert isinstance(throttle.admit("op-alice", ATTACKER), Admitted)


def test_the_wait_is_capped_never_a_lock(throttle: SigninThrottle, clock: Clock) -> None:
    waits = fail_through_waits(throttle, clock, 30)
    assert max(waits) == MAX_WAIT_S
    clock.now += MAX_WAIT_S
    assert isinstance(throttle.admit("op-alice", ATTACKER), Admitted)


def test_another_address_is_not_slowed_by_one_attackers_failures(throttle: SigninThrottle, clock: Clock) -> None:
    fail_through_waits(throttle, clock, 12)
    assert isinstance(throttle.admit("op-alice", ATTACKER), Refused)
    assert isinstance(throttle.admit("op-alice", ELSEWHERE), Admitted)
    assert isinstance(throttle.admit("op-bob", ATTACKER), Admitted)


def test_parallel_attempts_cannot_slip_through_one_wait_together(throttle: SigninThrottle) -> None:
    """Eight attempts at once, none settled yet: only the allowance and one more are checked."""
    attempts = [throttle.admit("op-alice", ATTACKER) for _ in range(8)]
    checked = [a for a in attempts if isinstance(a, Admitted)]
    assert len(checked) == PAIR_ALLOWANCE + 1
    assert all(isinstance(a, Refused) for a in attempts[len(checked):])


def test_the_right_password_ends_the_run_of_failures(throttle: SigninThrottle, clock: Clock) -> None:
    fail_through_waits(throttle, clock, PAIR_ALLOWANCE + 4)
    clock.now += MAX_WAIT_S
    attempt = throttle.admit("op-alice", ATTACKER)
    assert isinstance(attempt, Admitted)
    throttle.settle(attempt, right_password=True)
    for _ in range(PAIR_ALLOWANCE + 1):
        assert isinstance(fail(throttle), Admitted)  # a fresh allowance: the typo-then-caps-lock case


def test_spraying_many_accounts_from_one_address_is_slowed(throttle: SigninThrottle, clock: Clock) -> None:
    for n in range(ADDRESS_ALLOWANCE + 1):
        assert isinstance(fail(throttle, f"account-{n}"), Admitted)
    refused = throttle.admit("account-new", ATTACKER)
    assert isinstance(refused, Refused) and refused.retry_after_s == 1
    assert isinstance(throttle.admit("account-new", ELSEWHERE), Admitted)


def test_guessing_one_account_from_many_addresses_is_slowed_but_the_floor_still_gets_in(
        throttle: SigninThrottle, clock: Clock) -> None:
    for n in range(ACCOUNT_ALLOWANCE + 1):
        assert isinstance(fail(throttle, address=f"203.0.113.{n}"), Admitted)
    assert isinstance(throttle.admit("op-alice", "192.0.2.1"), Refused)
    on_the_floor = throttle.admit("op-alice", FLOOR)
    assert isinstance(on_the_floor, Admitted) and on_the_floor.trusted


def test_the_centres_own_networks_are_never_throttled_nor_counted(throttle: SigninThrottle) -> None:
    for address in (FLOOR, "127.0.0.1", "::ffff:10.20.3.4"):
        for _ in range(50):
            assert isinstance(fail(throttle, address=address), Admitted)
    assert isinstance(throttle.admit("op-alice", ATTACKER), Admitted)  # no failure counted from the floor


@pytest.mark.parametrize("address", ["testclient", "", "10.21.0.1", "::1"])
def test_only_ip_addresses_inside_a_trusted_network_are_trusted(throttle: SigninThrottle, address: str) -> None:
    assert not throttle.trusted(address)


def test_only_the_first_refusal_of_a_wait_is_to_be_audited_the_rest_are_counted(throttle: SigninThrottle,
                                                                                 clock: Clock) -> None:
    fail_through_waits(throttle, clock, PAIR_ALLOWANCE + 4)  # an 8 s wait now
    refusals = [throttle.admit("op-alice", ATTACKER) for _ in range(5)]
    assert [r.record for r in refusals if isinstance(r, Refused)] == [True, False, False, False, False]
    clock.now += 8
    attempt = throttle.admit("op-alice", ATTACKER)
    assert isinstance(attempt, Admitted) and attempt.unrecorded_refusals == 4


def test_a_quiet_day_forgets_the_failures(throttle: SigninThrottle, clock: Clock) -> None:
    fail_through_waits(throttle, clock, PAIR_ALLOWANCE + 6)
    clock.now += 24 * 3600 + 1
    for _ in range(PAIR_ALLOWANCE + 1):
        assert isinstance(fail(throttle), Admitted)


def test_memory_is_bounded(clock: Clock) -> None:
    throttle = SigninThrottle([], clock=clock, max_entries=10)
    for n in range(100):
        fail(throttle, f"account-{n}", f"192.0.2.{n}")
    assert all(len(table.counters) <= 10 for table in (throttle._pairs, throttle._addresses, throttle._accounts))
