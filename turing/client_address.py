"""The address of the client behind a request: the one function the join limiter, django-axes
(AXES_CLIENT_IP_CALLABLE) and anything else that tells clients apart by address use.

Behind a proxy every connection comes from the proxy, so REMOTE_ADDR alone puts a whole study in one join bucket
and lets anyone lock the staff out. The proxy says who its client was in a header (CLIENT_IP_HEADER, e.g.
X-Forwarded-For or X-Real-IP), but any client can send that header too: it is believed only on a request whose
REMOTE_ADDR is one of TRUSTED_PROXIES. In X-Forwarded-For each proxy appends the address it saw, so the client
is the right-most address that is not a trusted proxy; whatever stands left of it was written by that client
and proves nothing. A header that does not parse as an address gives REMOTE_ADDR: the proxy's, shared, never a
value the client chose.
"""

import functools
import ipaddress
import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


@functools.cache
def trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks TRUSTED_PROXIES names (an address is a network of one); ImproperlyConfigured on a bad one."""
    networks = []
    for proxy in proxies:
        try:
            networks.append(ipaddress.ip_network(proxy.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {proxy.strip()!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24, ::1)"
            ) from None
    return tuple(networks)


def header_meta_key(header: str) -> str:
    """request.META's key for an HTTP header name (X-Forwarded-For: HTTP_X_FORWARDED_FOR)."""
    if not HEADER_NAME.fullmatch(header):
        raise ImproperlyConfigured(f"CLIENT_IP_HEADER: {header!r} is not an HTTP header name (e.g. X-Forwarded-For)")
    return "HTTP_" + header.upper().replace("-", "_")


def check_proxy_settings(proxies: list[str], header: str) -> None:
    """Stop start-up on settings that cannot work: each of TRUSTED_PROXIES and CLIENT_IP_HEADER is useless alone."""
    trusted_networks(tuple(proxies))
    if header:
        header_meta_key(header)
    if bool(proxies) != bool(header):
        raise ImproperlyConfigured(
            "TRUSTED_PROXIES and CLIENT_IP_HEADER go together: the header is believed only from a trusted proxy, "
            f"so set both or neither (TRUSTED_PROXIES={','.join(proxies)!r}, CLIENT_IP_HEADER={header!r})"
        )


def parse_address(text: str) -> Address | None:
    """An address as proxies write it (1.2.3.4, 2001:db8::1, [2001:db8::1]:443, 1.2.3.4:5678), IPv4-mapped IPv6
    as IPv4; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(request) -> str:
    """The client's address for request, in one spelling per address (so one client is one bucket)."""
    remote = request.META.get("REMOTE_ADDR", "")
    sender = parse_address(remote)
    if sender is None:
        return remote
    networks = trusted_networks(tuple(settings.TRUSTED_PROXIES))
    if not settings.CLIENT_IP_HEADER or not _trusted(sender, networks):
        return str(sender)
    hops = request.META.get(header_meta_key(settings.CLIENT_IP_HEADER), "").split(",")
    client = sender
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return str(sender)
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)
