"""Where a job runs: its place in a torchrun process group, stop signals, the machine's name.

:class:`Ranks` is this process's rank, the world size and its device (rank 0 of 1 without
torchrun); :class:`StopSignals` records SIGTERM / SIGUSR1 (what Slurm sends before a time limit
or preemption) so a loop can save and stop cleanly, raising :class:`TrainingInterrupted`;
:func:`machine_label` names the host and processor for the speed attributes and table;
:func:`fix_mmap_threshold` keeps the C allocator from holding on to freed memory.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingInterrupted(Exception):
    """A stop signal arrived; last.pt holds the state to resume from."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass
class Ranks:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def start(cls) -> Ranks:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available()
        if world == 1:
            return cls(0, 1, torch.device("cuda" if cuda else "cpu"))
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
        return cls(dist.get_rank(), world, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all processes."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def describe(self) -> str:
        """Where the job runs, for the speed table: host, processor, processes."""
        label = machine_label(self.device)
        return f"{label['hostname']}: {label['device_name']} x {self.world} processes"

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


class StopSignals:
    """Records SIGTERM / SIGUSR1 instead of dying, so the loop can save and stop cleanly."""

    def __enter__(self) -> StopSignals:
        self.received = 0
        self.previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def machine_label(device: torch.device) -> dict[str, str]:
    """Hostname and the name of the processor a job runs on."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            for line in cpuinfo.read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        name = f"{name} ({torch.get_num_threads()} threads)"
    return {"hostname": socket.gethostname(), "device": device.type, "device_name": name}


MMAP_THRESHOLD = 64 * 1024  # bytes: allocations from this size on get their own mmap


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (mallopt M_MMAP_THRESHOLD) so that large CPU tensors are
    mmapped and their memory goes back to the system when freed. glibc otherwise raises the
    threshold after each large free, the freed temporaries of every physics sub-step stay in
    the heap, and the CPU peak resident set grows with the sub-steps (a paper-size training step
    of the hybrid added 5.27 GiB instead of 0.69). Call it once, early, in a process that runs
    the physics core on the CPU. Returns whether it was applied: False (nothing done) where this
    is not Linux with glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    M_MMAP_THRESHOLD = -3
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))
