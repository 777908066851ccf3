"""The outbound-URL guard: which URLs an operator may configure, and which addresses a
request may reach when it is sent (the system resolver for real names; a stand-in DNS
only where a name must answer what no real resolver here would, i.e. rebinding)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from oms_servicekit.outbound import (
    IPAddress,
    OutboundPolicy,
    OutboundRefused,
    OutboundSettings,
    Resolver,
    check_resolved,
    host_address,
    parse_networks,
)

DEFAULT = OutboundPolicy()
STRICT = OutboundPolicy(allowed=parse_networks([]))  # production: no loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # the cloud metadata service
        "http://169.254.1.1/",  # any link-local
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA/",
        "http://instance-data./latest",
        "http://100.100.100.200/",  # Alibaba Cloud metadata
        "http://[fe80::1]/",  # IPv6 link-local
        "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
        "http://[::ffff:a9fe:a9fe]/",  # the same, in hex
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 to the metadata address
        "http://0.0.0.0:8080/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "ftp://example.com/orders",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://example.com:99999/",
        "https://example.com/" + "x" * 2000,
    ],
)
def test_forbidden_urls_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        DEFAULT.check_url(url)


def test_public_urls_pass_and_loopback_only_where_allowed() -> None:
    for url in ("https://api.example.com/router/rest", "http://93.184.216.34:8080/x"):
        assert DEFAULT.check_url(url) == url
        assert STRICT.check_url(url) == url
    loopback = (
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/",
        "http://LocalHost./",
        "http://shop.localhost/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",  # and in hex shorthand
        "http://127.1/",
    )
    for url in loopback:
        assert DEFAULT.check_url(url) == url
        with pytest.raises(OutboundRefused, match="forbidden address"):
            STRICT.check_url(url)


def test_legacy_ipv4_spellings_are_the_address_they_spell() -> None:
    assert host_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert host_address("0xa9fea9fe") == ipaddress.ip_address("169.254.169.254")
    assert host_address("169.254.43518") == ipaddress.ip_address("169.254.169.254")
    assert host_address("api.example.com") is None
    assert host_address("deadbeef") is None  # a name, not an address


def test_https_only_refuses_plain_http() -> None:
    policy = OutboundPolicy(schemes=frozenset({"https"}))
    assert policy.check_url("https://api.example.com/")
    with pytest.raises(OutboundRefused, match="only https"):
        policy.check_url("http://api.example.com/")


def test_the_host_allow_list_takes_exact_names_and_suffixes() -> None:
    policy = OutboundPolicy(hosts=("gw.api.taobao.com", "*.example.com"))
    for url in (
        "https://gw.api.taobao.com/router/rest",
        "https://hooks.example.com/x",
        "https://a.b.Example.COM./x",
    ):
        assert policy.check_url(url) == url
    for url in (
        "https://example.com/",  # the suffix pattern names sub-domains only
        "https://evilexample.com/",
        "https://example.com.evil.org/",
        "https://api.taobao.com/",
        "http://127.0.0.1/",  # an address must be listed as well
    ):
        with pytest.raises(OutboundRefused, match="allowed hosts"):
            policy.check_url(url)
    # The allow-list never lets a blocked address through.
    listed = OutboundPolicy(hosts=("169.254.169.254", "metadata.google.internal"))
    for url in ("http://169.254.169.254/", "http://metadata.google.internal/"):
        with pytest.raises(OutboundRefused):
            listed.check_url(url)


def test_allowed_networks_are_exceptions_to_blocked_ones() -> None:
    policy = OutboundPolicy(allowed=parse_networks(["169.254.10.0/24"]))
    assert policy.address_allowed(ipaddress.ip_address("169.254.10.7"))
    assert not policy.address_allowed(ipaddress.ip_address("169.254.169.254"))
    assert not policy.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert policy.address_allowed(ipaddress.ip_address("10.1.2.3"))  # private: not blocked


# -- at send time: every resolved address -------------------------------------------


async def test_a_name_is_resolved_and_every_address_checked() -> None:
    # "localhost" goes through the system resolver here, like the HTTP client's lookup.
    addresses = await check_resolved("http://localhost:9/x", DEFAULT)
    assert addresses and all(a.is_loopback for a in addresses)
    with pytest.raises(OutboundRefused, match="forbidden address"):
        await check_resolved("http://localhost:9/x", STRICT)


def dns(answers: dict[str, Sequence[str]]) -> Resolver:
    """A stand-in DNS server answering fixed records (and nothing else)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        assert 0 < port < 65536
        return [ipaddress.ip_address(a) for a in answers[host]]

    return resolve


async def test_a_name_rebound_to_a_metadata_address_is_refused_at_send_time() -> None:
    url = "https://hooks.example.com/oms"
    assert DEFAULT.check_url(url) == url  # fine when configured ...
    honest = dns({"hooks.example.com": ["93.184.216.34"]})
    assert await check_resolved(url, DEFAULT, resolve=honest) == (
        ipaddress.ip_address("93.184.216.34"),
    )
    # ... later the name answers the metadata address (among others): refused.
    rebound = dns({"hooks.example.com": ["93.184.216.34", "169.254.169.254"]})
    with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254"):
        await check_resolved(url, DEFAULT, resolve=rebound)
    mapped = dns({"hooks.example.com": ["::ffff:169.254.169.254"]})
    with pytest.raises(OutboundRefused):
        await check_resolved(url, DEFAULT, resolve=mapped)


async def test_send_time_checks_the_url_again_and_literals_are_not_resolved() -> None:
    nothing = dns({})  # a lookup would fail the test with a KeyError
    with pytest.raises(OutboundRefused):
        await check_resolved("http://169.254.169.254/", DEFAULT, resolve=nothing)
    with pytest.raises(OutboundRefused):
        await check_resolved("ftp://files.example.com/", DEFAULT, resolve=nothing)
    assert await check_resolved("http://[::1]:8080/", DEFAULT, resolve=nothing) == (
        ipaddress.ip_address("::1"),
    )


async def test_an_unresolvable_name_is_a_failure_not_a_refusal() -> None:
    with pytest.raises(OSError) as caught:
        await check_resolved("https://no-such-host.invalid/", DEFAULT)
    assert not isinstance(caught.value, OutboundRefused)


# -- settings -------------------------------------------------------------------------


def test_settings_read_the_outbound_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    default = OutboundSettings().outbound_policy()
    assert default.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not default.address_allowed(ipaddress.ip_address("169.254.169.254"))
    assert default.schemes == {"https", "http"} and default.hosts == ()

    monkeypatch.setenv("OUTBOUND_ALLOWED_SCHEMES", '["https"]')
    monkeypatch.setenv("OUTBOUND_ALLOWED_HOSTS", '["*.Example.com", "gw.api.taobao.com"]')
    monkeypatch.setenv("OUTBOUND_ALLOWED_NETWORKS", "[]")
    monkeypatch.setenv("OUTBOUND_BLOCKED_NETWORKS", '["10.0.0.0/8"]')
    policy = OutboundSettings().outbound_policy()
    assert policy.schemes == {"https"}
    assert policy.hosts == ("*.example.com", "gw.api.taobao.com")
    assert not policy.address_allowed(ipaddress.ip_address("10.1.2.3"))
    assert policy.address_allowed(ipaddress.ip_address("127.0.0.1"))  # no longer blocked


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("outbound_allowed_schemes", ["ftp"]),
        ("outbound_allowed_hosts", ["exa*mple.com"]),
        ("outbound_blocked_networks", ["not-a-network"]),
        ("outbound_allowed_networks", ["10.0.0.0/33"]),
    ],
)
def test_bad_settings_fail_at_start_up(name: str, value: list[str]) -> None:
    with pytest.raises(ValueError):
        OutboundSettings.model_validate({name: value})
