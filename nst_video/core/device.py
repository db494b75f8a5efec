"""Devices: which exist, the one picked, the process-wide backend settings (set by the app that
builds an engine, not by the engine), the cores a process may use, and the one host read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from nst_video.errors import OptionError


def available_devices() -> list[str]:
    """The devices this torch build can use on this machine, in `auto`'s order of preference."""
    found = ["cuda"] if torch.cuda.is_available() else []
    found += ["mps"] if torch.backends.mps.is_available() else []
    return [*found, "cpu"]


def pick_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; a device this machine lacks is refused."""
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        raise OptionError(
            f"device {name!r} is not available with this torch build on this machine; "
            f"available: {', '.join(available)}"
        )
    return torch.device(name)


def native_bf16(capabilities: Mapping[str, object] | None = None) -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16), from torch's
    cpuinfo flags (`torch.cpu.get_capabilities()`, any OS); tests inject `capabilities`.
    Without them oneDNN emulates bf16 with fp32 instructions, slower than fp32 itself."""
    caps = torch.cpu.get_capabilities() if capabilities is None else capabilities
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """The arithmetic `precision` means on `device`: `auto` becomes tf32 on CUDA, bf16 on a CPU
    with bf16 units (half the time per evaluation on the default network, within fp32's own
    drift: speed.md, "A faster pass on the CPU"), fp32 elsewhere; an explicit choice stays as
    given. A work directory records the result, so a resume keeps it."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "tf32"
    return "bf16" if device.type == "cpu" and native_bf16() else "fp32"


def configure_backend(device: torch.device, precision: str) -> None:
    """Process-wide speed settings: cuDNN autotuning and TF32 on CUDA, all cores on the CPU.
    `precision` is the resolved one (resolve_precision); `auto` still means TF32 on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # frame sizes repeat for the whole render
        tf32 = precision in {"auto", "tf32"}
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    elif device.type == "cpu":
        # Denormal floats in VGG gradients can slow CPU passes several-fold; flushing them to
        # zero changes nothing visible.
        torch.set_flush_denormal(True)
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(usable_cpus())


def render_threads(workers: int = 1) -> int:
    """CPU threads for each of `workers` rendering processes on this machine: the user's
    OMP_NUM_THREADS when set, else the usable cores split between them. Float reductions
    depend on the count (at 32 px, 1 and 2 threads gave different frames from frame 2 on), so
    a render records it and a resume keeps it."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, usable_cpus() // max(1, workers))


def use_threads(threads: int | None) -> None:
    """Run torch's CPU work on `threads` threads (None: leave the process default)."""
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def usable_cpus() -> int:
    """Cores this process may use: its affinity, capped by a cgroup CPU quota (containers)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count or 1, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit visible
    return max(1, count or 1)


def to_host(*values: Tensor) -> list[float]:
    """Bring scalars to the host in one copy: the only place the optimizer waits for the device
    (tests and benchmarks count calls here)."""
    return torch.stack([v.detach().reshape(()).float() for v in values]).tolist()
