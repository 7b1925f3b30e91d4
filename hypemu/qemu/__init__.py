"""The QEMU bridge behind ``hypemu crosscheck``: the same board on QEMU system emulation
(``qemu-system-arm``), side by side with hypemu's strict model.

It uses nothing of hypemu but the public ``run``/``load_scenario``, the ``Result`` and
``Machine.export()``'s ``Export``, so any other emulator bridge can be built the same way. One
concept per module: ``launch`` (which QEMU board, starting it), ``gdbremote`` (the gdb remote
protocol), ``target`` (vCPUs through the gdbstub), ``driver`` (the PL1 driver's instructions),
``replay`` (the kernel-side actions in hypemu's order), ``registers`` (SP/ELR/SPSR_hyp), ``allowed``
and ``compare`` (rows and allowed differences), ``report``, ``crosscheck`` (one file) and
``command`` (the subcommand).
"""
