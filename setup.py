"""The compiled parts of hypemu: the native instruction budget (hypemu/_budget.c) and the
Unicorn calls of a trapped instruction made from C (hypemu/_uccalls.c). Both are optional: where
they cannot be built (no C compiler, no Python headers), the install goes on and hypemu counts with
Unicorn's emu_start(count=) and calls Unicorn through ctypes instead (hypemu --version says
which). The rest of the package's metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(name, [source], optional=True, extra_compile_args=["-O2"])
                   for name, source in (("hypemu._budget", "hypemu/_budget.c"),
                                        ("hypemu._uccalls", "hypemu/_uccalls.c"))])
