"""A client of the GDB remote serial protocol, spoken directly over a socket (no gdb process).

Why not ``gdb-multiarch``: the bridge needs a few dozen packet kinds' worth of nothing; a gdb child
costs ~0.3 s to start, needs MI parsing and an extra Debian package. The protocol is small: packets
``$data#checksum``, acknowledgements switched off with ``QStartNoAckMode``, stop replies ``T05...``,
an interrupt is the byte 0x03. QEMU's gdbstub: threads are vCPUs (1-based ids), ``vCont;c:N``
resumes vCPU N alone, ``Qqemu.PhyMemMode:1`` makes memory packets physical.
"""

from __future__ import annotations

import re
import socket
from typing import Optional


class GdbError(RuntimeError):
    """The stub answered an error (``Exx``) or something this client did not expect."""


class GdbRemote:
    """One connection to a gdbstub. Every method sends one request and returns its reply."""

    def __init__(self, sock: socket.socket, timeout: float = 20.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self._buf = b""
        self._acks = True
        self.request("QStartNoAckMode")
        self._acks = False

    # --- framing -----------------------------------------------------------------------------
    def _send(self, data: str) -> None:
        payload = data.encode("latin-1")
        frame = b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)
        self.sock.sendall(frame)

    def _recv_packet(self) -> str:
        while True:
            start = self._buf.find(b"$")
            end = self._buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self._buf) >= end + 3:
                payload = self._buf[start + 1:end]
                self._buf = self._buf[end + 3:]
                if self._acks:
                    self.sock.sendall(b"+")
                return _unescape(payload).decode("latin-1")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise GdbError("the gdbstub closed the connection")
            self._buf += chunk

    def request(self, data: str) -> str:
        """Send one packet and return the reply's payload."""
        self._send(data)
        return self._recv_packet()

    def checked(self, data: str) -> str:
        """``request``, raising GdbError on an error reply (``E..``) or an unsupported one ('')."""
        reply = self.request(data)
        if reply == "" or re.fullmatch(r"E[0-9a-fA-F]{2}", reply):
            raise GdbError(f"{data[:40]!r}: the gdbstub answered {reply!r}")
        return reply

    # --- registers, memory, threads ------------------------------------------------------------
    def thread(self, tid: int) -> None:
        """Select vCPU ``tid`` (1-based) for the register and memory packets."""
        self.checked(f"Hg{tid:x}")

    def read_reg(self, n: int, size: int = 4) -> int:
        reply = self.checked(f"p{n:x}")
        return int.from_bytes(bytes.fromhex(reply[:size * 2]), "little")

    def write_reg(self, n: int, value: int, size: int = 4) -> None:
        self.checked(f"P{n:x}={(value & ((1 << size * 8) - 1)).to_bytes(size, 'little').hex()}")

    def read_mem(self, addr: int, size: int) -> bytes:
        out = b""
        while len(out) < size:
            n = min(size - len(out), 2048)
            out += bytes.fromhex(self.checked(f"m{addr + len(out):x},{n:x}"))
        return out

    def write_mem(self, addr: int, data: bytes) -> None:
        for off in range(0, len(data), 8192):
            chunk = data[off:off + 8192]
            self.checked(f"M{addr + off:x},{len(chunk):x}:{chunk.hex()}")

    def breakpoint(self, addr: int, on: bool = True) -> None:
        self.checked(f"{'Z' if on else 'z'}0,{addr:x},4")

    def xfer(self, annex: str) -> str:
        """A whole ``qXfer:features:read`` document (target.xml and what it includes)."""
        text, offset = "", 0
        while True:
            reply = self.checked(f"qXfer:features:read:{annex}:{offset:x},ffb")
            text += reply[1:]
            offset += len(reply) - 1
            if reply[0] == "l":
                return text

    # --- running -------------------------------------------------------------------------------
    def resume(self, tid: int) -> None:
        """Let vCPU ``tid`` alone run (the others stay stopped); ``wait_stop`` collects the stop."""
        self._send(f"vCont;c:{tid:x}")

    def send_step(self, tid: int) -> None:
        """Let vCPU ``tid`` alone execute one instruction; ``wait_stop`` collects the stop."""
        self._send(f"vCont;s:{tid:x}")

    def wait_stop(self, timeout: Optional[float] = None) -> Optional[str]:
        """The stop reply, or None when ``timeout`` passed first (then the vCPU is still running)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout if timeout is not None else old)
        try:
            return self._recv_packet()
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(old)

    def interrupt(self) -> str:
        """Stop a running target (the 0x03 byte) and return its stop reply."""
        self.sock.sendall(b"\x03")
        return self._recv_packet()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def stopped_thread(reply: str) -> Optional[int]:
    """The vCPU named in a ``T`` stop reply (``thread:N;``), if any."""
    m = re.search(r"thread:(?:p[0-9a-f]+\.)?([0-9a-f]+);", reply)
    return int(m.group(1), 16) if m else None


def _unescape(payload: bytes) -> bytes:
    """Binary escapes (``}`` then byte ^ 0x20) and run-length encoding (``*``) of replies."""
    if b"}" not in payload and b"*" not in payload:
        return payload
    out = bytearray()
    i = 0
    while i < len(payload):
        c = payload[i]
        if c == 0x7D:
            out.append(payload[i + 1] ^ 0x20)
            i += 2
        elif c == 0x2A and out:
            out += out[-1:] * (payload[i + 1] - 29)
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)
