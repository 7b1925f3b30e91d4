"""Keystone, in a child process: it can segfault or hang on some inputs.

This is the only module that imports keystone, and only in the child. The child runs this file as
a script (`runpy.run_path`), so it imports nothing from hypemu."""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any
from dataclasses import dataclass

_KS_TIMEOUT = 5.0                 # seconds one keystone request may take before it counts as a hang


@dataclass(frozen=True)
class _KsResult:
    code: bytes | None            # None: keystone raised, crashed or hung
    error: str = ""               # keystone's message, or what happened to the child


_WORKER_BOOT = ("import runpy, sys; del sys.path[0]; "
                "runpy.run_path(sys.argv[1], run_name='__hypemu_keystone_worker__')")


class _KeystoneWorker:
    """A fork server for keystone: the child imports keystone once and never assembles; each
    request runs in a fresh fork of it and exits. So every request meets keystone in the same
    pristine state (measured: after a few successful requests in one process, `strd.w {r0-r3, pc},
    [pc, #-8]` segfaults, in a fresh process it is an ordinary error), and a crash kills only the
    fork. A hang is killed with the whole process group after `_KS_TIMEOUT` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0
        self._buffer = b""

    def assemble(self, source: str, base: int, thumb: bool = False) -> _KsResult:
        request = (json.dumps({"source": source, "base": base, "timeout": _KS_TIMEOUT,
                               "thumb": thumb}) + "\n").encode()
        with self._lock:
            for retry in (False, True):
                proc = self._ensure()
                assert proc.stdin is not None        # Popen(stdin=PIPE)
                try:
                    proc.stdin.write(request)
                    proc.stdin.flush()
                except OSError:
                    self.stop()
                    if retry:
                        return _KsResult(None, "the keystone process died")
                    continue
                return self._reply(proc)
        raise AssertionError("unreachable")

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None:
            return self._proc
        self._proc, self._owner, self._buffer = None, os.getpid(), b""   # a forked parent: anew
        proc = subprocess.Popen([sys.executable, "-c", _WORKER_BOOT, os.path.abspath(__file__)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        self._proc = proc
        line = self._read_line(proc, max(_KS_TIMEOUT, 60.0))
        hello = json.loads(line) if line else {"fatal": "it exited at start-up"}
        if "ready" not in hello:
            self.stop()
            raise RuntimeError(f"hypemu.asm: cannot start keystone: {hello.get('fatal')}")
        return proc

    def _reply(self, proc: subprocess.Popen[bytes]) -> _KsResult:
        line = self._read_line(proc, _KS_TIMEOUT)
        if line is None:
            self.stop()
            return _KsResult(None, f"keystone did not finish within {_KS_TIMEOUT:g} s (killed)")
        if not line:
            self.stop()
            return _KsResult(None, "the keystone process died")
        reply = json.loads(line)
        if "code" in reply:
            return _KsResult(bytes.fromhex(reply["code"]))
        if "crash" in reply:
            return _KsResult(None, f"keystone crashed ({reply['crash']})")
        return _KsResult(None, f"keystone: {reply['error']}")

    def _read_line(self, proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
        """One line from the child: b"" at end of file, None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None           # Popen(stdout=PIPE)
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def stop(self) -> None:
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None or self._owner != os.getpid():
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)    # the server and a fork that may be hanging
        except OSError:
            pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


_WORKER = _KeystoneWorker()
atexit.register(_WORKER.stop)


def _worker_main() -> None:
    """The fork server: one JSON request per line on stdin, one JSON reply per line on the
    original stdout; keystone's own prints go to stderr, never into the replies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        import keystone  # type: ignore[import-untyped]   # keystone-engine ships no type hints
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises
        print(json.dumps({"fatal": f"{type(e).__name__}: {e}"}), file=replies, flush=True)
        return
    print(json.dumps({"ready": True}), file=replies, flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _assemble_and_exit(keystone, json.loads(line), replies)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            crash = signal.Signals(os.WTERMSIG(status)).name
            print(json.dumps({"crash": crash}), file=replies, flush=True)
        elif os.WEXITSTATUS(status):
            print(json.dumps({"crash": f"exit status {os.WEXITSTATUS(status)}"}), file=replies,
                  flush=True)


def _assemble_and_exit(keystone: Any, request: dict[str, Any], replies: IO[str]) -> None:
    """In a fork of the server: one keystone run, one reply, exit. No symbol resolver: installing
    one makes keystone drop literal-pool words (after `.set X, 4294901760`, `ldr r1, =X`)."""
    status = 1
    try:   # should the parent die while keystone hangs, nobody would kill this fork: it does itself
        signal.alarm(int(request.get("timeout", 60)) + 2)
        mode = keystone.KS_MODE_THUMB if request.get("thumb") else keystone.KS_MODE_ARM
        ks = keystone.Ks(keystone.KS_ARCH_ARM, mode)
        try:
            code, _ = ks.asm(request["source"], request["base"], True)
            reply = {"code": (code or b"").hex()}
        except keystone.KsError as e:
            reply = {"error": str(e)}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        status = 0
    finally:
        os._exit(status)


if __name__ == "__hypemu_keystone_worker__":
    _worker_main()
