"""The MMU-level trace (issue 16 part 3): every kind on the default scenario, the filters, the
trampoline switch, stale hits and evictions with their origin, what a TLBI removed per CPU, the
steps as sections, the Tarmac-like form, the JSON event log against the schema, and no fake PC
for the kernel side (issue 15 item 18)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import hypemu
from hypemu import events as ev
from hypemu import tarmac, tracer
from hypemu.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
LINE = re.compile(r"^ +(\d+) cpu(\d) (kernel    |0x[0-9a-f]{8}) (.{34}) (\w+) +(.*)$")
HEADING = re.compile(r"^ +(\d+) == (steps\[\d+\] .*)$")
CONTINUATION = re.compile(r"^ {66}\S")


def trace(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """The trace lines ``hypemu run ARGS`` prints (the summary before them dropped)."""
    assert main(["run", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    return [line for line in out if LINE.match(line) or HEADING.match(line)
            or CONTINUATION.match(line)]


def sections(lines: list[str]) -> list[tuple[str, str, list[str]]]:
    """(kind, first line, continuation lines) of each event line; headings as kind 'step'."""
    out: list[tuple[str, str, list[str]]] = []
    for line in lines:
        if CONTINUATION.match(line):
            out[-1][2].append(line.strip())
        elif HEADING.match(line):
            out.append(("step", line, []))
        else:
            found = LINE.match(line)
            assert found, line
            out.append((found.group(5), line, []))
    return out


@pytest.fixture(scope="module")
def default_run() -> hypemu.Result:
    return hypemu.run(hypemu.load_scenario(SCENARIOS / "default.yaml"), trace=True)


# --- what is there --------------------------------------------------------------------------------

def test_every_kind_of_the_issue_appears_for_the_default_scenario(default_run):
    kinds = {e.kind for e in default_run.events}
    for group in ("sysreg", "barrier", "tlbi", "exception", "walk", "fill", "call", "kernel"):
        assert kinds & set(tracer.GROUPS[group]), group
    assert ev.STEP in kinds


def test_the_trampoline_switch_is_visible_in_order(capsys):
    """The design mail's moment: the fetch at 0xffff00bc through the boot pgd, the HTTBR write to
    the runtime pgd, the TLBIALLH, and the two boot-table entries it dropped."""
    lines = trace(capsys, "--trace=all", str(SCENARIOS / "default.yaml"))
    text = "\n".join(lines)
    walk = text.index("walk      fetch 0xffff00bc through the boot table (HTTBR 0x8000d000)")
    httbr = text.index("mcrr p15, #4, r0, r1, c2           sysreg    HTTBR = 0x8000e000")
    tlbi = text.index("tlbi      TLBIALLH: removed 2 entries (cpu0)")
    assert walk < httbr < tlbi
    after = text[tlbi:].splitlines()
    assert after[1].strip() == ("cpu0: VA 0x80009000+4 KiB -> PA 0x80009000 rwx Normal WBWA L3, "
                                "filled from the boot table (HTTBR 0x8000d000) at pc 0x8000909c "
                                "(instruction 49)")   # the idmap, by the first fetch with the MMU on
    assert after[2].strip() == ("cpu0: VA 0xffff0000+4 KiB -> PA 0x80009000 rwx Normal WBWA L3, "
                                "filled from the boot table (HTTBR 0x8000d000) at pc 0xffff00bc "
                                "(instruction 63)")   # the trampoline, by the jump to it
    # the walk read the boot pgd's entry for 0xffff0000 (L1 index 3: 0x8000d000 + 3 * 8) first
    walk_lines = text[walk:].splitlines()
    assert walk_lines[1].strip().startswith("L1 0x8000d018: 0x00000000800")
    assert walk_lines[3].strip().startswith("L3 ") and "page -> 0x80009000" in walk_lines[3]
    assert "TLBIALLH = " not in text   # TLBIALLH ignores its register: no value shown


def test_the_walks_are_the_runs_walks(default_run):
    """One walk event per walk the statistics count; each names its table and every level."""
    walks = [e for e in default_run.events if e.kind == ev.WALK]
    assert len(walks) == default_run.stats["walks"] == 6
    names = tracer.table_names(default_run.layout)
    assert {names[w.data["ttbr"]] for w in walks} == {"boot", "runtime"}
    for w in walks:   # T0SZ 0: levels 1, 2, 3; each descriptor as it is in memory
        assert [d["level"] for d in w.data["descriptors"]] == [1, 2, 3]
        assert w.data["descriptors"][0]["pa"] & ~0xFFF == w.data["ttbr"]


def test_an_instruction_count_on_every_event(default_run):
    counts = [e.icount for e in default_run.events]
    assert None not in counts
    assert counts == sorted(counts) and counts[-1] <= default_run.stats["instructions"]
    # the HTTBR write at 0xffff00bc is the instruction its own fetch's walk is for
    walk = next(e for e in default_run.events if e.kind == ev.WALK and e.pc == 0xFFFF00BC)
    write = next(e for e in default_run.events if e.kind == ev.SYSREG and e.pc == 0xFFFF00BC)
    assert walk.icount == write.icount


def test_hvc_eret_and_exception_entry_carry_their_registers(capsys):
    lines = trace(capsys, "--trace=call,exception", str(SCENARIOS / "default.yaml"))
    hvcs = [line for line in lines if " hvc  " in line]
    # phase 2: r0 the runtime pgd, r2 the stack top, r3 the runtime vectors; to the HYP trap vector
    assert any(line.endswith("hvc #0x0 r0=0x8000e000 r1=0x0 r2=0xc000d000 r3=0xc000a000 "
                             "-> 0x80009014") for line in hvcs)
    text = "\n".join(lines)
    assert "exception hyp_trap -> 0x80009014 (vector +0x14) from pc 0x80008000" in text
    assert "ELR_hyp=0x80008004 SPSR_hyp=0x1d3 HSR=0x4a000000 (EC 0x12 HVC imm16=0x0)" in text
    assert "eret -> 0x80008004 (to svc) r0=0x4b564d21" in text   # hyp_probe's return value


def test_a_data_abort_is_decoded(capsys):
    lines = trace(capsys, "--trace=exception,walk", str(SCENARIOS / "idmap-gone-after-init.yaml"))
    text = "\n".join(lines)
    assert "HSR=0x96000005 (EC 0x25 data abort taken in HYP DFSC 0b000101 translation L1 WnR=0 " \
           "S1PTW=0 ISV=0 IL=1)" in text
    assert "read in page 0x80009000 through the runtime table (HTTBR 0x8000e000)" in text
    assert "-> translation fault at level 1" in text


# --- steps and the kernel side --------------------------------------------------------------------

def test_steps_head_their_sections_with_the_line(tmp_path, capsys):
    path = tmp_path / "three.yaml"
    path.write_text("name: three\nsteps:\n  - boot: all\n"
                    "  - call: {fn: hyp_probe}\n"
                    "  - call: {fn: hyp_read, args: [0xc000b000]}\n"
                    "  - call: {fn: hyp_get_sp}\n")
    lines = trace(capsys, "--trace=call", str(path))
    heads = [HEADING.match(line).group(2) for line in lines if HEADING.match(line)]
    assert heads == ["steps[0] boot all (line 3)", "steps[1] cpu0 call hyp_probe (line 4)",
                     "steps[2] cpu0 call hyp_read(0xc000b000) (line 5)",
                     "steps[3] cpu0 call hyp_get_sp (line 6)"]
    m = hypemu.Machine({"name": "syms"})
    parts = "\n".join(lines).split(" == ")[2:]   # each call: its own HVC with its function in r0
    for part, fn in zip(parts, ("hyp_probe", "hyp_read", "hyp_get_sp")):
        assert part.count("hvc #0x0") == 1 and f"r0={m.symbol(fn):#x}" in part


def test_kernel_side_events_have_no_fake_pc(capsys):
    """No event claims PC 0: the kernel side's have none (issue 15 item 18)."""
    for name in ("hotplug.yaml", "remap-without-bbm.yaml", "single-step.yaml"):
        result = hypemu.run(hypemu.load_scenario(SCENARIOS / name), trace=True)
        assert all(e.pc != 0 for e in result.events), name
        kernel = [e for e in result.events if e.kind in (ev.INJECT, ev.STEP)
                  or e.name in ("cpu off", "remove the HYP idmap")]
        assert kernel and all(e.pc is None for e in kernel)
    lines = trace(capsys, "--trace=kernel", str(SCENARIOS / "hotplug.yaml"))
    assert not any("0x00000000" in line for line in lines)
    assert any(re.match(r"^ +\d+ cpu1 kernel +kernel +cpu off", line) for line in lines)


# --- the filters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(tracer.GROUPS))
def test_each_filter_selects_exactly_its_events(kind, capsys):
    """--trace=KIND prints the step headings and exactly the events of KIND that --trace=all
    prints, each with all its lines, in the same order."""
    scenario = str(SCENARIOS / "remap-without-bbm.yaml")   # has a hazard and an injection too
    everything = sections(trace(capsys, "--trace=all", scenario))
    assert main(["run", "--trace=" + kind, scenario]) == 0
    only = sections([line for line in capsys.readouterr().out.splitlines()
                     if LINE.match(line) or HEADING.match(line) or CONTINUATION.match(line)])
    expected = [s for s in everything if s[0] == "step" or s[0] in tracer.GROUPS[kind]]
    assert only == expected
    assert any(s[0] != "step" for s in only)   # every kind occurs in this scenario


def test_plain_trace_is_every_kind_but_walks_and_fills(capsys):
    scenario = str(SCENARIOS / "default.yaml")
    plain = sections(trace(capsys, "--trace", scenario))
    everything = sections(trace(capsys, "--trace=all", scenario))
    assert plain == [s for s in everything if s[0] not in ("walk", "fill")]


def test_the_cpu_filter(capsys):
    lines = trace(capsys, "--trace=all", "--cpu", "1", str(SCENARIOS / "hotplug.yaml"))
    events = [LINE.match(line) for line in lines if LINE.match(line)]
    assert events and {m.group(2) for m in events} == {"1"}
    assert [line for line in lines if HEADING.match(line)]   # the sections stay


@pytest.mark.parametrize("args, message", [
    (["--trace=walks"], "--trace: no event kind 'walks'; the kinds are sysreg"),
    (["--cpu", "0"], "--cpu and --trace-format go with --trace"),
    (["--events"], "--events goes with --json"),
    (["--trace", "--cpu", "3"], "--cpu 3: "),
])
def test_bad_trace_options_exit_2(args, message, capsys):
    assert main(["run", *args, str(SCENARIOS / "default.yaml")]) == 2
    assert message in capsys.readouterr().err


def test_without_a_trace_the_run_records_no_detail():
    """The hot path stays lean: no walk or fill events, no event data, unless asked."""
    result = hypemu.run(hypemu.load_scenario(SCENARIOS / "default.yaml"))
    assert not {e.kind for e in result.events} & {ev.WALK, ev.FILL}
    assert all(e.data is None and e.mode is None for e in result.events)
    traced = hypemu.run(hypemu.load_scenario(SCENARIOS / "default.yaml"), trace=True)
    assert traced.outcome == result.outcome and traced.stats["instructions"] == \
        result.stats["instructions"]


# --- stale hits, evictions, TLBIs on several CPUs -------------------------------------------------

def test_a_stale_hit_names_where_its_entry_was_filled():
    result = hypemu.run(hypemu.load_scenario(SCENARIOS / "stale-tlb-skip-tlbiallh.yaml"), trace=True)
    stale = [e for e in result.events if e.kind == ev.FILL and e.name == "stale"]
    assert len(stale) == 1 and stale[0].value == 0x80009000
    origin = stale[0].data["entry"]["origin"]
    assert origin == {"ttbr": result.layout["boot_pgd"], "pc": 0x8000909C, "icount": 49}
    assert stale[0].data["fresh"] == {"type": "translation", "level": 1}
    (hazard,) = result.hazards   # the report says it too (issue 16 part 4)
    assert ("filled from the boot table (HTTBR 0x8000d000) by the access at pc 0x8000909c "
            "(instruction 49)") in hazard["detail"]
    lines = tracer.text(stale, tracer.table_names(result.layout))
    assert "STALE read in page 0x80009000 from the TLB" in lines[0]
    assert lines[1].strip() == "the tables now give translation fault at level 1"


def test_evictions_of_a_small_tlb_show_their_origin():
    m = hypemu.Machine({"name": "small", "machine": {"tlb_entries": 2}}, trace=True)
    m.boot()
    m.call(0, "hyp_probe")
    evicted = [e for e in m.events if e.kind == ev.FILL and e.name == "evict"]
    assert evicted
    for e in evicted:   # FIFO: each went out after its own fill
        origin = e.data["entry"]["origin"]
        assert origin is not None and origin["icount"] <= e.icount
    line = tracer.text(evicted[:1], {})[0]
    assert re.search(r"fill +evict VA 0x[0-9a-f]+\+4 KiB -> PA 0x[0-9a-f]+ r.. .* filled from "
                     r"HTTBR 0x8000[de]000 at pc 0x[0-9a-f]+ \(instruction \d+\)", line)


def test_a_fill_served_by_a_walk_carries_no_earlier_origin():
    """A walk's entry is new. The walker hands back the very Translation it gave before when
    the tables read the same (its memo), so a page walked again after a hotplug took its entry
    must not show that removed entry's origin (nor may the refill keep it)."""
    result = hypemu.run(hypemu.load_scenario(SCENARIOS / "hotplug.yaml"), trace=True)
    walked = [e for e in result.events if e.kind == ev.FILL and e.data["source"] == "walk"]
    pages = [e.value & ~0xFFF for e in walked]
    assert len(pages) > len(set(pages))        # some page was walked again after its removal
    assert all(e.data["entry"]["origin"] is None for e in walked)

def test_a_broadcast_tlbi_says_what_it_removed_on_each_cpu():
    m = hypemu.Machine({"name": "two", "machine": {"cpus": 2}}, trace=True)
    m.boot()
    va = 0xC000B000
    m.call(0, "hyp_read", va)
    m.call(1, "hyp_read", va)
    m.remap("runtime", va, 0x82000000)   # break, TLBIMVAHIS through cpu0, make
    (tlbi,) = [e for e in m.events if e.kind == ev.TLBI and e.name == "TLBIMVAHIS"]
    assert tlbi.value == va and tlbi.data["cpus"] == [0, 1]
    assert [(r["cpu"], r["va"]) for r in tlbi.data["removed"]] == [(0, va), (1, va)]
    lines = tracer.text([tlbi], {m.kernel.runtime_pgd: "runtime"})
    assert "TLBIMVAHIS VA 0xc000b000: removed 2 entries (cpu0, cpu1)" in lines[0]
    assert lines[2].strip().startswith("cpu1: VA 0xc000b000+4 KiB -> PA 0x8000b000 rwx")


# --- the Tarmac-like form and JSON ----------------------------------------------------------------

TARMAC = re.compile(
    r"^(\d+) clk (?:hypemu == steps\[\d+\] .+|cpu\d (?:"
    r"IT \((\d+)\) [0-9a-f]{8} [0-9a-f]{8} A (?:hyp|svc|usr)_n : \S.*"
    r"|R \S+ (?:[0-9a-f]{8}|[0-9a-f]{8}_[0-9a-f]{8}|-{8})"
    r"|MR8 [0-9a-f]{8} [0-9a-f]{8}_[0-9a-f]{8}"
    r"|E [0-9a-f]{8} [0-9a-f]{8} [A-Z_]+"
    r"|hypemu \w+: \S.*))$")


def test_tarmac_shape(capsys):
    assert main(["run", "--trace=all", "--trace-format", "tarmac",
                 str(SCENARIOS / "default.yaml")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines()[8:] if line]
    stamps = []
    for line in lines:
        found = TARMAC.match(line)
        assert found, line
        stamps.append(int(found.group(1)))
        if found.group(2):
            assert found.group(2) == found.group(1)   # IT (count) repeats the timestamp
    assert stamps == sorted(stamps)
    text = "\n".join(lines)
    assert "63 clk cpu0 IT (63) ffff00bc ec410f42 A hyp_n : MCRR P15, #4, R0, R1, C2" in text
    assert "63 clk cpu0 R HTTBR 00000000_8000e000" in text
    assert "65 clk cpu0 R TLBIALLH --------" in text
    assert "63 clk cpu0 MR8 8000d018 00000000_80011003" in text   # the walk's first read
    assert "8 clk cpu0 E 80008000 4a000000 HYP_TRAP" in text


def test_json_events_validate_against_the_schema(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(hypemu.result_schema())
    files = [str(SCENARIOS / n) for n in ("default.yaml", "stale-tlb-skip-tlbiallh.yaml",
                                          "idmap-gone-after-init.yaml", "remap-without-bbm.yaml",
                                          "single-step-hotplug.yaml", "four-cpus.yaml")]
    main(["run", "--json", "--events", *files])
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == len(files)
    for result in results:
        validator.validate(result)
        assert result["events"] and all(e["icount"] is not None for e in result["events"])
    kinds = {e["kind"] for r in results for e in r["events"]}
    assert {ev.WALK, ev.FILL, ev.HAZARD, ev.STEP, ev.TLBI} <= kinds
    # the schema refuses what it should
    bad = dict(results[0], events=[dict(results[0]["events"][0], pc=0x1_0000_0000)])
    assert list(validator.iter_errors(bad))


def test_tarmac_lines_of_the_plain_events_need_no_detail():
    """A log recorded without the detail (the Machine default) still formats both ways."""
    m = hypemu.Machine({"name": "plain"})
    m.boot()
    assert tracer.text(m.events) and tarmac.lines(m.events)


def test_the_readme_excerpt_is_a_real_trace(capsys):
    """The README's trace excerpt is what `hypemu run --trace=all` prints for the default board."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("TLBIALLH and the two boot-table entries it drops", 1)[1]
    excerpt = block.split("```\n", 2)[1].splitlines()
    lines = [line[2:] for line in trace(capsys, "--trace=all")]
    start = lines.index(excerpt[0])
    assert lines[start:start + len(excerpt)] == excerpt and len(excerpt) > 15


def test_tlbiallh_records_no_operand(default_run):
    """TLBIALLH ignores its register (issue 15 item 18: the trace showed r0 as its value)."""
    (tlbi,) = [e for e in default_run.events if e.kind == ev.TLBI]
    assert (tlbi.name, tlbi.value, tlbi.pc) == ("TLBIALLH", None, 0xFFFF00C4)
