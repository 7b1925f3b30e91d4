"""The one compiled part of hypemu: the native instruction budget (hypemu/_budget.c). It is
optional: where it cannot be built (no C compiler, no Python headers), the install goes on and
hypemu counts with Unicorn's emu_start(count=) instead (hypemu --version says which). The rest of
the package's metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("hypemu._budget", ["hypemu/_budget.c"], optional=True,
                             extra_compile_args=["-O2"])])
