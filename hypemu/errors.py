"""Whose fault is it: every error hypemu raises on purpose, by who has to act on it.

- ``InputError``: the user's input is wrong (a scenario key, user init code that does not assemble
  or breaks the guest-code contract, a call of a function the runtime code lacks). It names the
  file and line where there is a file; the CLI prints it as one line and exits 2.
- ``ConfigError``: the kernel side refuses the layout, as KVM would. Not an error of the input
  format: it is the ``config_error`` outcome of a run.
- ``NotModelled``: the guest did something real hardware does but hypemu does not model (never
  guessed). The input is valid; the CLI reports it in one line and exits 2.
- ``UsageError``: a caller of the ``Machine`` API asked for something impossible (an unknown CPU,
  a call on a CPU that is not booted). Raised only at that API boundary; a ``ValueError`` too, as
  the API has always documented.

Anything else that escapes a run is an internal error, a bug of hypemu: the CLI prints the traceback
and asks for a bug report (exit status 3), the pytest plugin shows it as an ERROR with its traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Optional

INTERNAL_EXIT = 3
BUG_REPORT = ("hypemu: internal error: this is a bug in hypemu, not in your input; please report it "
              "with the traceback above and the scenario file")


class HypemuError(Exception):
    """Base of every error hypemu raises on purpose."""


class InputError(HypemuError):
    """The user's input is wrong; ``file`` and ``line`` say where, when there is a file."""

    file: Optional[str] = None
    line: Optional[int] = None


class ScenarioError(InputError, ValueError):
    """A scenario that is not valid input (not an outcome): names the key that is wrong, and the
    file and line when there is a file (``FILE:LINE: key.path: message``)."""

    def __init__(self, key: str, message: str, file: Optional[str] = None,
                 line: Optional[int] = None):
        self.key, self.message, self.file, self.line = key, message, file, line
        where = (f"{file}:{line}: " if line else f"{file}: ") if file else ""
        super().__init__(f"{where}{key}: {message}")

    def at(self, file: Optional[str], line: Optional[int]) -> "ScenarioError":
        """The same error (same class) placed in ``file`` at ``line``."""
        return type(self)(self.key, self.message, file, line)


class GuestContractError(ScenarioError):
    """User init code that assembles but breaks the contract the kernel side relies on
    (``__kvm_hyp_init`` first, ``__kvm_hyp_init_end`` after it); the key is ``hyp.code``."""


class UnknownFunction(InputError, ValueError):
    """A call of a name that is not a global of the runtime HYP code."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"no HYP function {name!r} in the runtime code{did_you_mean(name, known)} "
                         f"(callable: {', '.join(known)})")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``: did you mean X?`` for the closest of ``known`` to a misspelt ``name``, else empty."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f": did you mean {close[0]}?" if close else ""


class ConfigError(HypemuError):
    """The kernel side refuses this layout, as KVM would (the ``config_error`` outcome)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class NotModelled(HypemuError, RuntimeError):
    """The guest did something real hardware would do but hypemu does not model; never guessed."""


class OptionError(InputError):
    """A command-line option the input does not allow (``--after-step 5`` of a two-step scenario):
    the user's, one line, exit status 2."""


class UsageError(HypemuError, ValueError):
    """A ``Machine`` API call that cannot be done (raised only at that API boundary)."""


class StepInjectionWarning(UserWarning):
    """A ``Machine`` driven by ``boot``/``call``/``hotplug`` does not apply its scenario's
    step-bound injections (``remap ... at: N``); ``Machine.run_step``/``run_steps`` do."""
