"""Which QEMU board can host an exported board, and starting that QEMU with the memory image
loaded, stopped at reset, its gdbstub on a Unix socket.

Why these boards: QEMU's ``virt`` (``virtualization=on``: EL2 without EL3, vCPUs reset into Hyp
mode; PSCI over SMC for CPU_ON/CPU_OFF) has its RAM from 0x40000000, so every bank must lie in
[0x40000000, 4 GiB); ``-M none`` puts RAM at 0 with one vCPU and no PSCI. Any other board is
reported "not comparable" with the reason, never compared against a different memory map.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

from ..export import Export

VIRT_RAM_BASE = 0x40000000
MIB = 1 << 20
DEBIAN_PACKAGE = "qemu-system-arm"


class NotComparable(Exception):
    """QEMU cannot run this board as hypemu built it; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class QemuMissing(Exception):
    """No qemu-system-arm to run."""


@dataclass(frozen=True)
class Board:
    """The QEMU machine for an export: its command-line options and the driver page's PA."""

    name: str
    options: tuple[str, ...]
    psci: bool
    driver_pa: int


def find_qemu(path: Optional[str] = None) -> str:
    """``path`` if given (it must be executable), else qemu-system-arm on PATH."""
    found = path if path is not None else shutil.which("qemu-system-arm")
    if found is None or not os.access(found, os.X_OK):
        where = f"{path} is not an executable" if path else "no qemu-system-arm on PATH"
        raise QemuMissing(f"{where}: install the Debian package {DEBIAN_PACKAGE} "
                          f"(apt-get install {DEBIAN_PACKAGE}) or pass --qemu PATH")
    return found


def driver_page(ex: Export) -> int:
    """A page of RAM nothing of the board uses: from the top of the highest bank down."""
    base, size = max(ex.banks)
    for pa in range(base + size - 0x1000, base - 1, -0x1000):
        if not any(ex.in_use(p) for p in (pa, pa + 0xFFF)):
            return pa
    raise NotComparable("no free page of RAM for the driver")


def choose_board(ex: Export) -> Board:
    """The QEMU board that can host ``ex``, or NotComparable."""
    lo = min(b for b, _ in ex.banks)
    hi = max(b + s for b, s in ex.banks)
    if lo >= VIRT_RAM_BASE and hi <= 1 << 32:
        ram = -(-(hi - VIRT_RAM_BASE) // MIB)
        options: tuple[str, ...] = ("-M", "virt,virtualization=on,highmem=off",
                                    "-cpu", "cortex-a15", "-smp", str(ex.cpus), "-m", f"{ram}M")
        return Board("virt", options, True, driver_page(ex))
    if len(ex.banks) == 1 and lo == 0 and ex.cpus == 1:
        if any(a.kind == "power_off" for a in ex.actions):
            raise NotComparable("a CPU hotplug on a one-CPU board at PA 0: QEMU's -M none has "
                                "no PSCI to power the CPU back on")
        options = ("-M", "none", "-cpu", "cortex-a15,has_el3=off", "-m", f"{-(-hi // MIB)}M")
        return Board("none", options, False, driver_page(ex))
    banks = ", ".join(f"[{b:#x}, {b + s:#x})" for b, s in ex.banks)
    if lo == 0:
        why = "RAM at PA 0 runs only on QEMU's -M none, which has one CPU and one bank"
    else:
        why = "QEMU virt has RAM only in [0x40000000, 4 GiB)"
    raise NotComparable(f"RAM {banks} on {ex.cpus} CPU(s): {why}")


class Qemu:
    """A running qemu-system-arm, stopped at reset, with the image loaded; ``sock`` is the
    connected gdbstub. Use as a context manager: the process and its files go at exit."""

    def __init__(self, qemu: str, board: Board, ex: Export):
        self.dir = tempfile.TemporaryDirectory(prefix="hypemu-qemu-")
        path = os.path.join(self.dir.name, "gdb.sock")
        loaders: list[str] = []
        for n, rng in enumerate(ex.memory):
            image = os.path.join(self.dir.name, f"ram{n}.bin")
            with open(image, "wb") as handle:
                handle.write(rng.data)
            loaders += ["-device", f"loader,file={image},addr={rng.pa:#x},force-raw=on"]
        argv = [qemu, *board.options, "-S", "-display", "none", "-nodefaults", "-monitor", "none",
                "-serial", "none", "-chardev", f"socket,id=gdb0,path={path},server=on,wait=off",
                "-gdb", "chardev:gdb0", *loaders]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.sock = self._connect(path)

    def _connect(self, path: str, wait: float = 10.0) -> socket.socket:
        deadline = time.monotonic() + wait
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"qemu-system-arm exited ({self.proc.returncode}): {err.strip()}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("qemu-system-arm's gdbstub did not come up") from None
                time.sleep(0.01)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.dir.cleanup()

    def __enter__(self) -> "Qemu":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
