"""This machine's address as phones on the same network reach it, for the URLs and QR codes that serve, the demo,
create_study, build_study and the poster page give out.

The hostname is no guide: Debian and Ubuntu map it to 127.0.1.1 in /etc/hosts. The address routing would use
is: a UDP socket "connected" towards an outside address picks the interface without sending a packet. A
machine with no route outwards (a laptop running its own hotspot) still has its interfaces' addresses.
"""

import fcntl
import ipaddress
import socket
import struct
from urllib.parse import urlsplit

# manage.py serve's port unless told otherwise.
DEFAULT_PORT = 8000
# A documentation address (RFC 5737) stands for "outside": connecting a UDP socket to it sends nothing.
ROUTE_PROBE = ("192.0.2.1", 9)
SIOCGIFADDR = 0x8915  # Linux's ioctl for an interface's IPv4 address


def routed_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(ROUTE_PROBE)
            return probe.getsockname()[0]
        except OSError:
            return None


def interface_addresses() -> list[str]:
    """IPv4 addresses of this machine's interfaces (Linux), and those its hostname resolves to (elsewhere)."""
    found = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                request = struct.pack("256s", name[:15].encode())
                found.append(socket.inet_ntoa(fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)[20:24]))
            except OSError:
                continue  # down, or without an IPv4 address
    try:
        found += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        pass
    return list(dict.fromkeys(found))


def lan_address() -> str | None:
    """The address other devices on the network reach this machine at, or None when it has only loopback.

    The routed address when there is one; otherwise an interface's, a private one (a venue's or a hotspot's
    network) before a public one, anything before loopback, which no phone can open.
    """
    routed = routed_address()
    if reachable(routed):
        return routed
    usable = [address for address in interface_addresses() if reachable(address)]
    private = [address for address in usable if ipaddress.ip_address(address).is_private]
    candidates = private or usable
    return candidates[0] if candidates else None


def reachable(address: str | None) -> bool:
    if address is None:
        return False
    parsed = ipaddress.ip_address(address)
    return not (parsed.is_loopback or parsed.is_link_local or parsed.is_unspecified)


LOOPBACK_WARNING = (
    "WARNING: this machine has no network address other than loopback, so no phone can open "
    "these URLs. Join the Wi-Fi the phones use (or start a hotspot), then start again, or pass "
    "--host with the address phones should use."
)


def site_url(host: str | None, port: int) -> str:
    """http://host:port, with "localhost" for a machine that has no other address."""
    return f"http://{host or 'localhost'}:{port}"


def serve_command(study: str, port: int) -> str:
    """The serve command line for study, naming the port only where it is not the default."""
    return f"python manage.py serve --study {study}" + (f" --port {port}" if port != DEFAULT_PORT else "")


def join_url_line(path: str, port: int = DEFAULT_PORT) -> str:
    """The line create_study and build_study end with: where phones will open path once `serve` runs."""
    address = lan_address()
    line = f"Join URL (once `manage.py serve` runs on port {port}): {site_url(address, port)}{path}"
    return line if address else f"{line}\n{LOOPBACK_WARNING}"


def phone_url(scheme: str, host: str, path: str) -> tuple[str, bool]:
    """(URL of path, whether phones can open it) for a page opened at scheme://host: the same address, unless
    that is this machine's loopback (a researcher opening the poster page on the laptop itself), which is
    replaced by the network address, keeping the port."""
    parts = urlsplit(f"//{host}")
    name = parts.hostname or ""
    if name != "localhost" and not is_loopback(name):
        return f"{scheme}://{host}{path}", True
    address = lan_address()
    if address is None:
        return f"{scheme}://{host}{path}", False
    return f"{scheme}://{address}{f':{parts.port}' if parts.port else ''}{path}", True


def is_loopback(name: str) -> bool:
    """Whether name is a loopback IP address (a host name is not)."""
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def port_in_use(port: int, address: str = "0.0.0.0") -> bool:
    """Whether something (another `serve`, a `make demo` left running) already listens on the port where
    address would listen (every interface by default)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False
