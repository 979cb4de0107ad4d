"""One client address for everything: the proxy's header believed only from TRUSTED_PROXIES, the right-most
untrusted X-Forwarded-For hop, and the join limiter and django-axes both keyed on it."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from django.urls import reverse

from turing.client_address import check_proxy_settings, client_address
from turing.participant.throttle import join_allowed

PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = [PROXY, "10.1.0.0/16", "2001:db8:ffff::/48"]
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    return settings


def address(remote, forwarded=None, **meta):
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", REMOTE_ADDR=remote, **meta))


def test_a_trusted_proxys_header_names_the_client(behind_proxy):
    assert address(PROXY, "198.51.100.7") == "198.51.100.7"


def test_a_forged_header_from_anyone_else_is_ignored(behind_proxy):
    assert address("198.51.100.7", "203.0.113.1") == "198.51.100.7"


def test_without_proxy_settings_the_header_is_never_read(settings):
    assert settings.TRUSTED_PROXIES == [] and settings.CLIENT_IP_HEADER == ""
    assert address(PROXY, "198.51.100.7") == PROXY


def test_the_right_most_hop_that_is_not_a_trusted_proxy_is_the_client(behind_proxy):
    # The client wrote 203.0.113.66 itself; 198.51.100.7 is what the outer proxy (a trusted network) saw.
    assert address(PROXY, "203.0.113.66, 198.51.100.7, 10.1.4.4") == "198.51.100.7"
    # Every hop a trusted proxy: the furthest one is as close to the client as can be known.
    assert address(PROXY, "10.1.9.9, 10.1.4.4") == "10.1.9.9"


def test_ipv6_hops_and_networks_are_matched_and_spelt_one_way(behind_proxy):
    assert address("2001:db8:ffff::1", "2001:DB8:0:0::42") == "2001:db8::42"
    assert address("2001:db8:ffff::1", "2001:db8::42, 2001:db8:ffff:1::9") == "2001:db8::42"
    assert address(PROXY, "[2001:db8::42]:51000") == "2001:db8::42"
    assert address("::ffff:10.0.0.2", "198.51.100.7:4431") == "198.51.100.7"
    assert address("2001:db8:fffe::1", "198.51.100.7") == "2001:db8:fffe::1"  # outside the trusted /48


@pytest.mark.parametrize("garbage", ["", "unknown", "198.51.100.7, not-an-ip", "1.2.3.999", "[::1", "a\x00b"])
def test_a_header_that_is_not_an_address_gives_the_proxys_own(behind_proxy, garbage):
    assert address(PROXY, garbage) == PROXY


def test_garbage_left_of_the_client_was_written_by_the_client_and_is_ignored(behind_proxy):
    assert address(PROXY, "<script>, 198.51.100.7") == "198.51.100.7"


def test_x_real_ip_is_read_when_named(settings):
    settings.TRUSTED_PROXIES, settings.CLIENT_IP_HEADER = ["127.0.0.1"], "X-Real-IP"
    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.1"
    )
    assert client_address(request) == "198.51.100.7"


@pytest.mark.parametrize(
    ("proxies", "header", "message"),
    [
        (["10.0.0.300"], "X-Forwarded-For", "TRUSTED_PROXIES: '10.0.0.300' is not an IP address or network"),
        (["10.0.0.0/40"], "X-Forwarded-For", "TRUSTED_PROXIES: '10.0.0.0/40' is not an IP address or network"),
        ([PROXY], "X Forwarded For", "CLIENT_IP_HEADER: 'X Forwarded For' is not an HTTP header name"),
        ([PROXY], "", "TRUSTED_PROXIES and CLIENT_IP_HEADER go together"),
        ([], "X-Forwarded-For", "TRUSTED_PROXIES and CLIENT_IP_HEADER go together"),
    ],
)
def test_proxy_settings_that_cannot_work_stop_start_up_naming_the_setting(proxies, header, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        check_proxy_settings(proxies, header)


def test_two_clients_behind_one_proxy_have_separate_join_buckets(behind_proxy):
    behind_proxy.TURING_JOINS_PER_MINUTE = 2
    factory = RequestFactory()

    def joins(client):
        request = factory.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client)
        return [join_allowed(request) for _ in range(3)]

    assert joins("198.51.100.7") == [True, True, False]
    assert joins("198.51.100.8") == [True, True, False]
    # A client that forges the header straight at the server is counted on its own address, whatever it claims.
    forged = [
        join_allowed(factory.get("/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")) for n in range(3)
    ]
    assert forged == [True, True, False]


@pytest.mark.django_db
def test_a_lockout_behind_the_proxy_is_the_failing_clients_not_everyones(behind_proxy):
    get_user_model().objects.create_user("researcher", password="the-right-password-1", is_staff=True)

    def log_in(client, password):
        return Client().post(
            reverse("admin:login"),
            {"username": "researcher", "password": password},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=client,
        )

    for _ in range(10):
        log_in("203.0.113.66", "wrong")
    assert log_in("203.0.113.66", "the-right-password-1").status_code == 429
    # The researcher, behind the same proxy, is not locked out by someone else's guesses.
    assert log_in("198.51.100.7", "the-right-password-1").status_code == 302
