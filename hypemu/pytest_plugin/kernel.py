"""``--hypemu-kernel PATH``: a kernel tree whose own HYP code replaces ``hyp.code`` in every
scenario file the plugin collects (as ``hypemu run --kernel PATH``). Checked once, at configure."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

KERNEL = pytest.StashKey[Optional[str]]()


def checked_tree(config: pytest.Config) -> Optional[str]:
    """The option as an absolute path (from the directory pytest was started in); a tree hypemu
    cannot use is a usage error."""
    given: Optional[str] = config.getoption("hypemu_kernel")
    if given is None:
        return None
    from ..errors import InputError
    from ..kernel_tree import KernelTree
    try:
        return str(KernelTree.open(config.invocation_params.dir / Path(given).expanduser()).root)
    except InputError as err:
        raise pytest.UsageError(f"--hypemu-kernel: {err}") from None


def kernel_tree(config: pytest.Config) -> Optional[str]:
    """The kernel tree that replaces ``hyp.code`` in every scenario file (None: none given)."""
    return config.stash.get(KERNEL, None)
