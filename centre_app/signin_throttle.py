"""Sign-in throttling: a growing wait after failed sign-ins, by account and by client address,
never a lock; and the centre's own network, where an operator always gets in.

Why not a lock: five wrong passwords used to lock an account for 15 minutes, whoever typed them,
so anyone on the internet could keep the night shift out with one guess every three minutes.

How an attempt from outside `trusted_networks` is judged (`SigninThrottle.admit`). Three counters of
consecutive failed sign-ins, each with an allowance of failures before any wait:

| counter | allowance | what it stops |
|---|---|---|
| the account at this address | `PAIR_ALLOWANCE` (3) | guessing one account from one place; typos cost nothing |
| this address, any account | `ADDRESS_ALLOWANCE` (20) | password spraying: one guess at many accounts |
| the account, any address | `ACCOUNT_ALLOWANCE` (100) | guessing one account from many places |

Past its allowance, each further failure doubles that counter's wait, `BASE_WAIT_S` (1 s), 2 s,
4 s … up to `MAX_WAIT_S` (15 minutes): the "period of time that increases as the account
approaches its maximum allowance for consecutive failed attempts" of NIST SP 800-63B §5.2.2,
which also bounds failures on one account to 100 (hence `ACCOUNT_ALLOWANCE`); the OWASP
Authentication Cheat Sheet ("Account Lockout") prefers such a growing delay to a lockout, which
an attacker can use to deny service. An attempt that comes within a wait is refused (HTTP 429
with `Retry-After`): no password is checked, no worker thread or database transaction waits;
the answer comes after a pause of up to `REFUSAL_PAUSE_S`, asleep on the event loop, so that a
script that ignores Retry-After cannot make the centre answer as fast as it asks. An attempt is
counted as failed as it is admitted, and un-counted when the password proves right, so parallel
attempts cannot slip through one wait together.

A right password ends the run of failures for its account at that address and for the account
(NIST counts *consecutive* failures); the address's counter only loses this attempt, so a
sprayer who owns one account cannot reset it. A counter with no failure for `FORGET_AFTER_S`
(a day) starts again from nothing.

From `trusted_networks` (the centre's own floor; `TELECARE_TRUSTED_NETWORKS`, default loopback
only) nothing is throttled and nothing is counted: an operator there gets in with the right
password even while the account is attacked from elsewhere (NIST SP 800-63B §5.2.2 lists
accepting sign-ins from known addresses among the ways to keep attackers from locking out the
legitimate subscriber). Every attempt, from anywhere, is still audited by the route.

Where the state lives: in memory, in this process, not in the database. A centre is one process
(its broker sessions have fixed client ids, so a second one cannot run beside it); a database
counter would put a write (on SQLite, the write lock) on every refused guess, which is the
fault this module exists to remove, and would let an attacker grow the audit table without
bound. The cost: a restart forgets the counters, giving an attacker one more allowance per
restart; restarts are rare, logged by systemd, and not an attacker's to cause. The
audit log keeps the record: every checked attempt (`login`, `login_failed`, with the address)
and the first refusal of each wait (`login_refused`), later refusals counted into the next row
for that account and address. Memory is bounded: each counter table keeps the
`MAX_ENTRIES` most recently failing keys.
"""

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

PAIR_ALLOWANCE = 3
"""Failures of one account from one address before any wait: a typo, then caps lock."""
ADDRESS_ALLOWANCE = 20
"""Failures from one address, any accounts, before any wait (password spraying, OWASP
Authentication Cheat Sheet); a shared office address signing in many staff stays well under it."""
ACCOUNT_ALLOWANCE = 100
"""Failures of one account, any addresses, before any wait: NIST SP 800-63B §5.2.2 ("no more than 100")."""
BASE_WAIT_S = 1.0
"""The first wait past an allowance; each further failure doubles it (NIST SP 800-63B §5.2.2)."""
MAX_WAIT_S = 15 * 60.0
"""The longest wait: about 100 guesses a day per counter at most, while an operator who
mistyped a dozen times waits minutes, not hours (NIST SP 800-63B §5.2.2 gives "30 seconds up to
an hour" as an example; the 15 minutes of the lock this replaced)."""
FORGET_AFTER_S = 24 * 3600.0
"""A counter with no failure for a day starts again from nothing."""
MAX_ENTRIES = 10_000
"""Keys kept per counter table (a few MB at most); the least recently failing are forgotten first."""
REFUSAL_PAUSE_S = 1.0
"""How long the route sleeps (asynchronously: no thread, no transaction) before answering a
refusal, at most the wait itself. A script ignores Retry-After and asks again the moment it is
answered; answered at once, eight such clients made the centre's process serve hundreds of
refusals a second, which slowed alarms through the interpreter's lock (`bench/signin_flood.py`).
Paused, each client gets one answer a second. A person who hits a wait learns it a second later."""
LOOPBACK = ("127.0.0.0/8", "::1/128")
"""The default trusted networks: the centre's own host only."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def wait_after(failures: int, allowance: int) -> float:
    """Seconds to wait after `failures` consecutive failures: 0 within `allowance`, then
    `BASE_WAIT_S`, doubling with each further failure, at most `MAX_WAIT_S`."""
    if failures <= allowance:
        return 0.0
    return min(MAX_WAIT_S, BASE_WAIT_S * 2.0 ** min(failures - allowance - 1, 64))


@dataclass
class _Counter:
    failures: int = 0
    last_failure_at: float = 0.0
    until: float = 0.0
    """Monotonic time before which attempts are refused."""
    refusal_recorded_for: float = -1.0
    """The `until` whose first refusal was audited (pair counters only)."""
    unrecorded_refusals: int = 0
    """Refusals since then, not audited one by one (pair counters only)."""


class _Table:
    """Counters by key, the most recently failing last, at most `MAX_ENTRIES`."""

    def __init__(self, allowance: int, max_entries: int) -> None:
        self.allowance = allowance
        self.max_entries = max_entries
        self.counters: OrderedDict[tuple[str, ...], _Counter] = OrderedDict()

    def get(self, key: tuple[str, ...], now: float) -> _Counter | None:
        counter = self.counters.get(key)
        if counter is not None and counter.failures and now - counter.last_failure_at > FORGET_AFTER_S:
            del self.counters[key]
            return None
        return counter

    def get_or_add(self, key: tuple[str, ...], now: float) -> _Counter:
        counter = self.get(key, now)
        if counter is None:
            counter = self.counters[key] = _Counter()
            while len(self.counters) > self.max_entries:
                self.counters.popitem(last=False)
        return counter

    def fail(self, key: tuple[str, ...], now: float) -> None:
        counter = self.get_or_add(key, now)
        counter.failures += 1
        counter.last_failure_at = now
        counter.until = max(counter.until, now + wait_after(counter.failures, self.allowance))
        self.counters.move_to_end(key)


@dataclass(frozen=True)
class Admitted:
    """Check the password. Give this back to `SigninThrottle.settle` with the result."""

    account: str
    address: str
    trusted: bool
    """From `trusted_networks`: counted nowhere."""
    unrecorded_refusals: int
    """Refused attempts for this account and address not audited one by one: name them in this attempt's row."""


@dataclass(frozen=True)
class Refused:
    """Answer 429 with `Retry-After: retry_after_s`, without checking the password."""

    retry_after_s: int
    """Whole seconds (rounded up) until an attempt for this account from this address may be checked."""
    record: bool
    """The first refusal of this wait for this account and address: audit it. Later ones are counted
    into the next audited attempt (`Admitted.unrecorded_refusals`)."""


class SigninThrottle:
    """The sign-in counters of one centre process (see the module). Thread-safe; every method is
    quick (no I/O), so the route calls it on the event loop."""

    def __init__(self, trusted_networks: Iterable[Network | str] = LOOPBACK, *,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES,
                 refusal_pause_s: float = REFUSAL_PAUSE_S) -> None:
        """`trusted_networks`: networks or CIDR strings (`CentreSettings.trusted_networks`).
        `clock`: seconds, monotonic (tests pass their own). `refusal_pause_s`: see `REFUSAL_PAUSE_S`."""
        self.trusted_networks: Sequence[Network] = [ipaddress.ip_network(n) for n in trusted_networks]
        self.clock = clock
        self.refusal_pause_s = refusal_pause_s
        self._lock = threading.Lock()
        self._pairs = _Table(PAIR_ALLOWANCE, max_entries)
        self._addresses = _Table(ADDRESS_ALLOWANCE, max_entries)
        self._accounts = _Table(ACCOUNT_ALLOWANCE, max_entries)

    def trusted(self, address: str) -> bool:
        """Whether a client address (as the web server reports it: "10.20.0.7", "::1") is in a
        trusted network. Anything that is not an IP address is not trusted."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == network.version and ip in network for network in self.trusted_networks)

    def admit(self, account: str, address: str) -> Admitted | Refused:
        """May the password of `account`, tried from `address`, be checked now? If so, the attempt
        is counted as failed until `settle` says otherwise."""
        if self.trusted(address):
            return Admitted(account, address, trusted=True, unrecorded_refusals=0)
        with self._lock:
            now = self.clock()
            keys = ((self._pairs, (account, address)), (self._addresses, (address,)), (self._accounts, (account,)))
            until = max((c.until for table, key in keys if (c := table.get(key, now)) is not None), default=0.0)
            if until > now:
                pair = self._pairs.get_or_add((account, address), now)
                record = pair.refusal_recorded_for != until
                if record:
                    pair.refusal_recorded_for = until
                else:
                    pair.unrecorded_refusals += 1
                return Refused(retry_after_s=max(1, math.ceil(until - now)), record=record)
            for table, key in keys:
                table.fail(key, now)
            pair = self._pairs.get_or_add((account, address), now)
            unrecorded, pair.unrecorded_refusals = pair.unrecorded_refusals, 0
            return Admitted(account, address, trusted=False, unrecorded_refusals=unrecorded)

    def settle(self, attempt: Admitted, right_password: bool) -> None:
        """The password was checked. A wrong one stays counted; a right one ends the run of failures
        for the account (here and everywhere) and takes this attempt off the address's count."""
        if attempt.trusted or not right_password:
            return
        with self._lock:
            self._pairs.counters.pop((attempt.account, attempt.address), None)
            self._accounts.counters.pop((attempt.account,), None)
            counter = self._addresses.counters.get((attempt.address,))
            if counter is not None and counter.failures > 0:
                counter.failures -= 1
