"""One image per trial, "real or generated?": the protocol of every study before protocols were added."""

from turing.protocols import Protocol, register_protocol


class Single(Protocol):
    name = "single"
    label = "Single image: real or generated?"


register_protocol(Single())
