"""The benchmark suite runs (tiny sizes; no timing is asserted: timings live in `hypemu bench`)."""

from __future__ import annotations

from hypemu import bench


def test_benchmarks_run_and_report_every_measure():
    measures = [bench.bench_init(reps=2), *bench.bench_loop(rounds=2), bench.bench_fills(pages=64, reps=2)]
    names = [m.name for m in measures]
    assert names == ["cpu init (stub+phase1+phase2)", "HYP loop vs bare, exact budget",
                     "HYP loop vs bare, uncounted", "bare with count= vs without",
                     "TLB fills served (model hits)"]
    assert all(m.value > 0 for m in measures)
    # one fill per touched page, plus the HYP text, the HYP stack and the PL1 caller's page
    assert measures[-1].detail.startswith(f"{64 + 3} fills per call")
