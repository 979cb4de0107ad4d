"""Turn a `--device` option into a torch.device, failing early with a clear message."""

import torch

from colorization.errors import ConfigError


class DeviceError(ConfigError):
    """The requested device does not exist on this machine."""


def resolve_device(spec: str = "auto") -> torch.device:
    """Return the device for "auto" (first CUDA GPU if any, else CPU), "cpu", "cuda" or "cuda:N".

    Raises DeviceError for an unknown name or a GPU this machine does not have, so a typo fails before any
    data is loaded rather than deep inside the first forward pass.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise DeviceError(f"device {spec!r} asked for, but no CUDA GPU is available here (use --device cpu)")
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {spec!r} asked for, but this machine has {count} CUDA GPU(s)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device
