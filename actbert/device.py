"""The torch device a command was asked for, checked against this machine before any work starts."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch


def checked_device(name: str) -> str:
    """``name`` ("auto", "cpu", "cuda", "cuda:1", "mps", ...) as a device this machine has ("auto":
    the first GPU, else the CPU); a ``ValueError`` with a one-line reason otherwise."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device {name}: not a torch device ({str(exc).splitlines()[0]})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: no CUDA GPU is available on this machine; use --device cpu")
        if (device.index or 0) >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return name


def has_bf16_matrix_units(cpuinfo: str) -> bool:
    """Whether a Linux ``/proc/cpuinfo`` text lists Intel's AMX-BF16 matrix units (``amx_bf16``):
    there bf16 autocast trains faster than float32; elsewhere bf16 is emulated and slower."""
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in cpuinfo.splitlines())


@cache
def cpu_has_bf16_matrix_units() -> bool:
    """``has_bf16_matrix_units`` of this machine (False where /proc/cpuinfo cannot be read)."""
    try:
        return has_bf16_matrix_units(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False
