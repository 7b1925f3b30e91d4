"""Assemble hypemu's guest code: GNU-as style ARM (A32) sources, or Thumb-2 (`thumb=True`: a
CONFIG_THUMB2_KERNEL build), on keystone-engine 0.9.2.

`assemble(source, base)` turns a source into a `Program` (bytes at `base`, label addresses, globals).
Keystone only encodes instructions; everything around them is done here, because keystone 0.9.2 was
measured (tests/test_asm.py, TestKeystoneQuirks, in child processes) to:

- crash (SIGSEGV on `.text`; on some malformed instructions, depending on what the process ran before)
  and hang forever (`.fill UNDEF`, `.ascii ,`, `movss =x, r0`, statements starting with `>>` or `*/`).
  So keystone never runs in this process: each request runs in a fresh fork of a server process that
  has only imported keystone (`_KeystoneWorker`), under a timeout. A crash or a hang becomes an
  AsmError at the statement found by bisection, and results never depend on history.
- mishandle GNU-as sources: it swallows code after `.section .text` or `.pushsection`, rejects `.type`
  and `.size`, has no numeric local labels, no ERET/HVC/SMC, no banked MSR/MRS (ELR_hyp, SP_hyp,
  SPSR_hyp...), and its `.macro` would hide macro bodies from the rewriting done here. So the
  preprocessor handles comments, sections, `.macro/.rept/.irp/.irpc`, `.if...`, local labels and the
  kernel's ENTRY/ENDPROC/W/ARM/THUMB, encodes those instructions as `.word`s, and rejects any
  directive not on its whitelist.
- fail silently: empty output for `mov r0, #UNDEF`, for a forward `.equ` or label arithmetic in an
  immediate; `movw r0, #:lower16:label` encoded as 0; `.short 0x10000` dropped; an unencodable ADR, a
  far branch or a literal pool out of reach encoded as garbage; with a symbol resolver installed,
  literal-pool words dropped. So every `#expression`, `:lower16:`/`:upper16:` operand, data value,
  `.set` value and directive size is evaluated here (labels come from a first pass, every ARM
  instruction being 4 bytes) and reaches keystone as a plain number; the output must end with a
  sentinel word; and each `ldr rX, =expr` and each B/BL/ADR/load naming a label is decoded afterwards
  and checked against what the source says.
- in Thumb mode: accept a conditional instruction only inside an explicit IT block, and drop
  `.inst.w`. So the preprocessor makes the IT blocks as GNU as's `-mimplicit-it=always` does
  (`implicit_it`), turns `.inst*` into halfwords, encodes ERET/HVC/SMC/banked MSR/MRS as T32
  halfwords; label passes repeat until the addresses settle (a value can change an instruction's
  size), and the PC-relative checks decode Thumb encodings.
- read expressions with C-like precedence where GNU as does not (`1 + 2 << 3`: GNU as 17, keystone
  24): an expression the two would group differently is refused until parenthesised.

Parity with GNU as 2.40 (`arm-linux-gnueabihf-as -march=armv7-a+virt`): tests/test_asm_gnu.py
assembles every `.S` of the repository with both and compares the bytes and the symbols; the Linux
v3.9/v3.10 `arch/arm/kvm/init.S` and `arch/arm/kernel/hyp-stub.S`, preprocessed with their headers,
were measured to assemble to the same bytes too. What that takes, beyond the above: `ldr rX, =c`
is a MOV or MVN where GNU as makes it one (`instructions._literal_as_move`), alignment padding is
rewritten as GNU as writes it, and the sections are placed one after another
(`sections`: text, then data, then bss).

Deviations from GNU as (written down here, once; each refused with a message where the result
would differ, never assembled differently):
- There is no linker: the sections are placed in the order `sections` documents, at `base`, the
  first one unaligned. `.global` names must be labels defined in the same source; a section with
  no "a" flag and a name that does not give its kind (not allocated by GNU as) is refused, as are
  subsections (`.text 1`).
- `ldr rX, =expr` where expr names more than one label (GNU as folds a difference of labels it
  has placed in the same fragment into a MOV): refused.
- A `.set`/`.equ` must be evaluable (no undefined symbols, no '.'), even when it is never used;
  read in an immediate it takes the last definition above the use, or the first one below.
- Comparisons and `&&`/`||` are accepted only in `.if` conditions; an expression that GNU as and
  keystone would group differently is refused until parenthesised.
- Thumb, C preprocessor lines and any directive not on the whitelist are refused.

The package, one concept a module: `api` (the entry points), `program` (Program, AsmError),
`cache`, `source` (comments, statements, strings), `preprocess` (statements, labels) with its
mixins `directives`, `conditionals`, `macros`, `instructions`, `implicit_it` and `sections`,
`encode` (what keystone cannot encode), `expr` (expressions), `unit` (the statements handed to the
builder), `build` (keystone passes, failures located), `check` (keystone's output checked), `parts`
(what the mixins rely on) and `worker` (keystone itself, the only module that imports it).
"""

from __future__ import annotations

from .api import assemble, assemble_file, cache_info, clear_memory_cache
from .encode import _BANKED      # noqa: F401 - read by tests/test_asm.py
from .program import AsmError, Program
from .worker import _WORKER     # noqa: F401 - read by tests/test_asm.py

__all__ = ["AsmError", "Program", "assemble", "assemble_file", "cache_info", "clear_memory_cache"]
