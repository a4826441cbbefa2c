"""Where a message may go: hosts on the internet, and inside the centre's own networks only
where the centre is told so.

A contact point is entered by an administrator over the API, and a test message is sent on
request. Either could aim the centre at a host of its own network (a database, a router's
admin page, a cloud metadata service at 169.254.169.254) or at itself (127.0.0.1), and use
it as a probe or a relay behind the firewall. So the host an Apprise URL names is resolved,
and each address it resolves to must be globally routable (`ipaddress`'s `is_global`, and
not multicast): private (RFC 1918, fc00::/7), loopback, link-local, shared (100.64.0.0/10),
unspecified (0.0.0.0 and ::, which reach the centre itself) and reserved addresses are
refused, unless `InternalTargets` (the setting `TELECARE_ALLOWED_INTERNAL_TARGETS`, empty
by default) names the host, or holds the address in one of its networks.

What is checked (`refusal`):
- an Apprise URL of a service that can be self-hosted (json://, ntfy://host/topic,
  gotify://, matrix://, mqtt://, rsyslog://, …): the host Apprise itself parsed from it,
  which is where it connects (`apprise_channel.server_host`);
- not a service with only a public endpoint (tgram://, discord://, slack://, pover://, …),
  whose URL holds tokens where a host would be, nor a URL with no host (ntfys://topic, the
  public ntfy.sh): they connect to their vendor;
- not `mailto:`: the centre's own SMTP relay sends it, set by whoever runs the centre (its
  environment, not the API), so a relay on the centre's network or on loopback (the demo's)
  is never refused here.

A host that does not resolve is not refused: there is nothing it could reach, and the send
fails by itself, visibly. The check is made when a contact point is entered, before each
test message and before every send; Apprise resolves the host again as it connects, so a
name whose DNS answer changes in those milliseconds could still slip through.
"""

import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str], list[IPAddress]]
"""host name or address → every address it resolves to ([] when it does not resolve)."""

_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
"""A host name as an allow-list entry (RFC 1123 labels; `_` as some internal names have it)."""


@dataclass(frozen=True)
class InternalTargets:
    """The internal hosts messages may go to anyway: host names (lower case, matched to the
    URL's host exactly) and networks (matched to each resolved address)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "InternalTargets":
        """From the setting's entries, each a network ("10.20.0.0/16", "::1/128"), an address
        ("127.0.0.1") or a host name ("pager.centre.lan"). ValueError names a bad entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            text = entry.strip().lower()
            try:
                networks.append(ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.match(text):
                raise ValueError(f"{entry!r} is neither a network (10.20.0.0/16), an address nor a host name")
            hosts.add(text)
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether a message may go to `address`, which `host` (as written in the URL) resolved to."""
        return host.lower() in self.hosts or any(address in network for network in self.networks)


NO_INTERNAL_TARGETS = InternalTargets()
"""The default: no internal host is allowed."""


def resolve(host: str) -> list[IPAddress]:
    """Every address `host` resolves to, as the system resolver answers (an address as
    written, "127.0.0.1", "2130706433" or "0x7f000001", is its own answer); [] if none."""
    try:
        answers = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in answers:
        text = str(sockaddr[0]).partition("%")[0]  # an IPv6 scope ("fe80::1%eth0") does not change the kind
        try:
            found[ip_address(text)] = None
        except ValueError:
            continue
    return list(found)


def internal_kind(address: IPAddress) -> str | None:
    """What makes `address` internal ("a loopback address", "a private address", …), or None
    when it is a globally routable unicast address. An IPv4 address written as IPv6
    (::ffff:127.0.0.1) is judged as the IPv4 address it is."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, test in (("the unspecified address (the centre itself)", address.is_unspecified),
                       ("a loopback address", address.is_loopback), ("a link-local address", address.is_link_local),
                       ("a multicast address", address.is_multicast), ("a private address", address.is_private)):
        if test:
            return kind
    return None if address.is_global else "an address that is not globally routable"


def refusal(address: str, allowed: InternalTargets = NO_INTERNAL_TARGETS,
            resolver: Resolver = resolve) -> str | None:
    """None when messages may be sent to contact point `address`; otherwise why not, e.g.
    "localhost resolves to 127.0.0.1, a loopback address: the centre sends only to public
    hosts unless TELECARE_ALLOWED_INTERNAL_TARGETS lists it". Never raises."""
    from alerting.channels import apprise_channel, is_mailto  # the package imports this module first

    if is_mailto(address):
        return None
    host = apprise_channel.server_host(address)
    if host is None:
        return None
    for resolved in resolver(host):
        kind = internal_kind(resolved)
        if kind is not None and not allowed.allows(host, resolved):
            what = f"{host} is {kind}" if host == str(resolved) else f"{host} resolves to {resolved}, {kind}"
            return f"{what}: the centre sends only to public hosts unless TELECARE_ALLOWED_INTERNAL_TARGETS lists it"
    return None
