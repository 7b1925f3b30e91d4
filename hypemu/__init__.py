"""hypemu: a simulator of the Linux KVM/ARM HYP-mode bring-up on Unicorn, with a Python-modelled HYP."""

__version__ = "0.1.0"
