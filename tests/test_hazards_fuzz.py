"""Random kernel-side and HYP timelines (remaps, corruptions, calls, TLB maintenance, hotplug): the
model never crashes, and the hazard checks only observe: with them off the guest executes the same
instructions and gets the same values and the same fault."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypemu.kvm import GuestFault
from hypemu.machine import Machine
from hypemu.scenario import from_mapping

DATA_VA = 0xC000B000
IDMAP_VA = 0x80009010
OTHER = (0x82000000, 0x82001000)

op = st.one_of(
    st.tuples(st.just("call"), st.integers(0, 1),
              st.sampled_from(["hyp_probe", "hyp_tlbi_all", "hyp_tlbi_all_is", "hyp_get_sp"])),
    st.tuples(st.just("read"), st.integers(0, 1), st.sampled_from([DATA_VA, IDMAP_VA, DATA_VA + 0x40])),
    st.tuples(st.just("write"), st.integers(0, 1), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("tlbi_va"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("remap"), st.sampled_from(OTHER), st.booleans(), st.booleans()),
    st.tuples(st.just("corrupt"), st.sampled_from(["valid", "af", "xn", "ap"]), st.integers(0, 3)),
    st.tuples(st.just("hotplug"), st.just(1)),
)


def _play(ops, checks: bool):
    m = Machine(from_mapping({"name": "fuzz", "machine": {"cpus": 2},
                              "kernel": {"hyp_idmap_offset": 0x1000}}), checks=checks)
    m.boot()
    seen = []
    try:
        for o in ops:
            kind = o[0]
            if kind == "call":
                seen.append(m.call(o[1], o[2]))
            elif kind == "read":
                seen.append(m.call(o[1], "hyp_read", o[2]))
            elif kind == "write":
                seen.append(m.call(o[1], "hyp_write", DATA_VA + 8, o[2]))
            elif kind == "tlbi_va":
                seen.append(m.call(o[1], "hyp_tlbi_va_is" if o[2] else "hyp_tlbi_va", DATA_VA))
            elif kind == "remap":
                m.remap("runtime", DATA_VA, o[1], bbm=o[2], tlbi=o[3])
            elif kind == "corrupt":
                value = o[2] if o[1] == "ap" else o[2] & 1
                m.corrupt("runtime", DATA_VA, o[1], value)
            else:
                m.hotplug(o[1], "off")
                m.hotplug(o[1], "on")
    except GuestFault as err:
        seen.append(err.record.to_dict())
    return seen, m.core.stats.instructions, m.hazards


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=8))
def test_random_timelines_never_crash_and_checks_change_nothing(ops):
    with_checks = _play(ops, True)
    without = _play(ops, False)
    assert with_checks[0] == without[0]
    assert with_checks[1] == without[1]
    assert without[2] == []
    for h in with_checks[2]:
        assert h.kind in ("stale_tlb", "bbm", "missing_isb", "missing_dsb")
        assert h.detail
