"""Where a message may go (`alerting/channels/targets.py`): public hosts only, unless the
centre allows an internal one. Names are resolved by a stand-in resolver: no DNS is asked."""

from ipaddress import ip_address

import pytest

from alerting.channels import Message, send
from alerting.channels.targets import InternalTargets, IPAddress, internal_kind, refusal

NAMES = {
    "hooks.example.org": ["93.184.216.34"],
    "intranet.example.org": ["93.184.216.34", "10.1.2.3"],  # one public answer and one private
    "pager.centre.lan": ["10.20.0.7"],
}


def resolver(host: str) -> list[IPAddress]:
    """A stand-in DNS: the names above; an address is its own answer; anything else does not resolve."""
    try:
        return [ip_address(host)]
    except ValueError:
        return [ip_address(a) for a in NAMES.get(host, [])]


@pytest.mark.parametrize(("address", "kind"), [
    ("json://127.0.0.1:8080/hook", "a loopback address"),
    ("json://[::1]/hook", "a loopback address"),
    ("json://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ("json://0.0.0.0/hook", "the unspecified address"),
    ("json://10.1.2.3/hook", "a private address"),
    ("jsons://192.168.1.1/hook", "a private address"),
    ("json://169.254.169.254/latest/meta-data", "a link-local address"),
    ("json://100.64.0.1/hook", "not globally routable"),
    ("json://224.0.0.1/hook", "a multicast address"),
    ("ntfy://172.16.0.9/alarms", "a private address"),
    ("gotify://intranet.example.org/token", "intranet.example.org resolves to 10.1.2.3, a private address"),
])
def test_an_internal_target_is_refused_and_the_refusal_says_why(address: str, kind: str) -> None:
    problem = refusal(address, resolver=resolver)
    assert problem is not None and kind in problem
    assert "TELECARE_ALLOWED_INTERNAL_TARGETS" in problem


def test_how_the_url_is_read_is_how_apprise_reads_it() -> None:
    # urllib would say the host is evil.example; Apprise connects to 127.0.0.1, and so it is judged
    problem = refusal("json://evil.example\\@127.0.0.1/hook", resolver=resolver)
    assert problem is not None and "127.0.0.1 is a loopback address" in problem


@pytest.mark.parametrize("address", [
    "json://hooks.example.org/telecare",
    "json://93.184.216.34/hook",
    "ntfys://ada-alarms",  # the public ntfy.sh: no host in the URL
    "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345",  # a public endpoint: tokens, not a host
    "json://does-not-resolve.example/hook",  # nothing to reach; the send fails by itself
    "mailto:kim@family.test",  # the centre's own SMTP relay sends it
    "garbage",  # not usable: validate_address says so, not this check
])
def test_public_and_hostless_targets_and_mail_are_not_refused(address: str) -> None:
    assert refusal(address, resolver=resolver) is None


def test_the_allow_setting_names_networks_addresses_and_hosts() -> None:
    allowed = InternalTargets.parse(["10.20.0.0/16", "127.0.0.1", "PAGER.centre.lan"])
    assert refusal("json://10.20.5.5/hook", allowed, resolver) is None
    assert refusal("json://127.0.0.1:8080/hook", allowed, resolver) is None
    assert refusal("json://pager.centre.lan/hook", InternalTargets.parse(["pager.centre.lan"]), resolver) is None
    assert refusal("json://10.21.0.1/hook", allowed, resolver) is not None  # outside the allowed network
    assert refusal("json://127.0.0.2/hook", allowed, resolver) is not None
    with pytest.raises(ValueError, match="neither a network"):
        InternalTargets.parse(["pager centre"])


def test_every_kind_of_internal_address_is_named() -> None:
    assert internal_kind(ip_address("8.8.8.8")) is None
    assert internal_kind(ip_address("2001:4860:4860::8888")) is None
    assert internal_kind(ip_address("fe80::1")) == "a link-local address"
    assert internal_kind(ip_address("fc00::1")) == "a private address"
    assert internal_kind(ip_address("::")) == "the unspecified address (the centre itself)"


def test_send_does_not_connect_to_a_refused_target() -> None:
    delivery = send("json://127.0.0.1:9/hook", Message("test", "body", 9, "test/1"), None)
    assert not delivery.ok and delivery.channel == "json"
    assert delivery.detail.startswith("not sent: 127.0.0.1 is a loopback address")
