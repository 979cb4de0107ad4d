"""The address phones are given: the routed one, else an interface's, never loopback while another exists."""

import socket

from turing import network


def test_the_routed_address_wins(monkeypatch):
    monkeypatch.setattr(network, "routed_address", lambda: "10.1.2.3")
    monkeypatch.setattr(network, "interface_addresses", lambda: ["127.0.0.1", "192.168.0.5"])
    assert network.lan_address() == "10.1.2.3"


def test_without_a_route_a_private_interface_address_before_a_public_one_and_never_loopback(monkeypatch):
    # A laptop running its own hotspot has no route outwards; Debian maps the hostname to 127.0.1.1.
    monkeypatch.setattr(network, "routed_address", lambda: None)
    monkeypatch.setattr(
        network,
        "interface_addresses",
        lambda: ["127.0.0.1", "127.0.1.1", "169.254.3.4", "93.184.216.34", "192.168.137.1"],
    )
    assert network.lan_address() == "192.168.137.1"


def test_only_loopback_gives_none_and_urls_fall_back_to_localhost(monkeypatch):
    monkeypatch.setattr(network, "routed_address", lambda: "127.0.0.1")
    monkeypatch.setattr(network, "interface_addresses", lambda: ["127.0.0.1", "127.0.1.1"])
    assert network.lan_address() is None
    assert network.site_url(None, 8001) == "http://localhost:8001"


def test_this_machines_interfaces_are_listed():
    assert "127.0.0.1" in network.interface_addresses()


def test_a_port_someone_listens_on_is_in_use():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert network.port_in_use(port)
    assert not network.port_in_use(port)


def test_the_join_line_and_the_serve_command_name_the_port_serve_will_use(monkeypatch):
    monkeypatch.setattr(network, "lan_address", lambda: "192.168.1.20")
    assert (
        network.join_url_line("/s/x/", 8001)
        == "Join URL (once `manage.py serve` runs on port 8001): http://192.168.1.20:8001/s/x/"
    )
    assert network.serve_command("x", 8001) == "python manage.py serve --study x --port 8001"
    assert network.serve_command("x", network.DEFAULT_PORT) == "python manage.py serve --study x"
