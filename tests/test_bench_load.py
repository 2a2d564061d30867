"""posedet.bench.load (per-row load: wait while busy, mark rows timed under load), the report's
† mark and p10–p90 cells, and ``posedet bench compare``. Fake samplers: no real waiting."""
from __future__ import annotations

import json
from pathlib import Path

from posedet.bench import load as L


def _fake(monkeypatch, others, during=None):
    seq = iter(others)
    monkeypatch.setattr(L, "sample", lambda w: {"loadavg": [1.0, 1.0, 1.0], "other_cpu_cores": next(seq)})
    slept = []
    monkeypatch.setattr(L, "_sleep", slept.append)
    snaps = iter([(0.0, 0.0, 0.0), (1.0, during or 0.0, 0.0)])
    monkeypatch.setattr(L, "cpu_snapshot", lambda: next(snaps))
    return slept


def test_busy_then_quiet_waits_then_times(monkeypatch):
    slept = _fake(monkeypatch, [1.5, 1.2, 0.1])
    g = L.LoadGuard(2, wait_s=7.0, tries=3)
    with g.row("x") as rec:
        pass
    assert slept == [7.0, 7.0] and rec["waited_s"] == 14.0
    assert rec["busy"] is True and rec["timed_under_load"] is False
    assert rec["other_cpu_cores_before"] == 0.1 and [s["busy"] for s in rec["samples"]] == [True, True, False]
    row = L.LoadGuard.mark({"network_ms": 1.0}, rec)
    assert row["timed_under_load"] is False and row["load"]["loadavg_after"] is not None
    assert g.manifest_fields()["load_summary"] == {"rows": 1, "rows_timed_under_load": 0, "waited_s": 14.0}


def test_always_busy_is_timed_and_marked(monkeypatch):
    slept = _fake(monkeypatch, [2.0] * 10)
    g = L.LoadGuard(2, wait_s=5.0, tries=3)
    with g.row() as rec:
        pass
    assert slept == [5.0, 5.0, 5.0] and len(rec["samples"]) == 4
    assert rec["timed_under_load"] is True and rec["busy"] is True
    assert g.manifest_fields()["load_summary"]["rows_timed_under_load"] == 1


def test_run_wait_budget_and_load_during_timing(monkeypatch):
    slept = _fake(monkeypatch, [2.0] * 10)
    g = L.LoadGuard(2, wait_s=5.0, tries=3, max_total_wait_s=7.0)
    with g.row():
        pass
    assert slept == [5.0, 2.0]                                   # the run's waiting budget caps it
    slept = _fake(monkeypatch, [0.0], during=0.9)                 # quiet before, loaded while timing
    with L.LoadGuard(2, tries=0).row() as rec:
        pass
    assert rec["busy"] is False and rec["other_cpu_cores_during"] == 0.9 and rec["timed_under_load"] is True


def test_busy_rule_falls_back_to_loadavg_without_psutil():
    p = L.LoadPolicy()
    assert p.is_busy({"other_cpu_cores": 0.6, "loadavg": [0, 0, 0]}, 2)
    assert not p.is_busy({"other_cpu_cores": 0.4, "loadavg": [9, 9, 9]}, 2)
    assert p.is_busy({"other_cpu_cores": None, "loadavg": [2.6, 0, 0]}, 2)
    assert not p.is_busy({"other_cpu_cores": None, "loadavg": [2.4, 0, 0]}, 2)


def test_real_sample_is_cheap_and_sane():
    s = L.sample(0.05)
    assert s["other_cpu_cores"] is None or s["other_cpu_cores"] >= 0.0
    assert s["loadavg"] is None or len(s["loadavg"]) == 3


def _row(method, bb, ms, p10, p90, under=False, other=None):
    return {"method": method, "backbone": bb, "short_side": 640, "device": "cpu", "dtype": "fp32",
            "network_ms": ms, "fps": 1000.0 / ms, "spread": {"p10_ms": p10, "p90_ms": p90, "n": 5},
            "timed_under_load": under,
            "load": {"timed_under_load": under, "other_cpu_cores_before": other, "other_cpu_cores_during": other}}


def test_report_marks_rows_timed_under_load(bench_rows_of):
    from posedet.report import tables as T

    doc = {"manifest": {"cpu": "FakeCPU"}, "rows": [
        _row("PoseDet", "hrnet_w48", 400.0, 380.0, 420.0, under=True, other=1.4),
        _row("PoseDet", "dla34", 100.0, 95.0, 125.0)]}
    rows, _, _ = bench_rows_of(doc)
    w48 = [r for r in rows if r["backbone"] == "hrnet_w48"][0]
    dla = [r for r in rows if r["backbone"] == "dla34"][0]
    assert T._fps_cell(w48, 640, True) == "2.5†" and T._fps_cell(dla, 640, True) == "10.0"
    assert T._fps_range_cell(dla) == "8.0–10.5" and T._fps_range_cell(w48) == "2.4–2.6"
    note = T._under_load_note([w48, dla])
    assert note.startswith("† timed under load") and "1.4 cores" in note
    assert T._under_load_note([dla, None]) is None
    rec = T._fps_record("hrnet_w48", "cpu", 10, w48)
    assert rec["timed_under_load"] is True and rec["network_ms_p10"] == 380.0 and rec["other_cpu_cores"] == 1.4


def test_compare_ratios_and_flags(tmp_path, capsys):
    from posedet.bench import compare as C

    a = {"rows": [_row("PoseDet", "dla34", 100.0, 95, 105), _row("HigherHRNet-style", "hrnet_w48", 1000.0, 900, 1100),
                  _row("backbone", "dla34", 50.0, 49, 51), _row("YOLO11n-pose", "yolo11n", 20.0, 19, 21)]}
    b = {"rows": [_row("PoseDet", "dla34", 105.0, 100, 110), _row("HigherHRNet-style", "hrnet_w48", 1200.0, 1100, 1300,
                                                                   under=True, other=1.0),
                  _row("backbone", "dla34", 80.0, 79, 81)]}
    out = C.compare(a, b)
    assert [(e["method"], e["ratio"], e["outside"]) for e in out] == [("PoseDet", 1.05, False),
                                                                     ("HigherHRNet-style", 1.2, True)]
    assert out[1]["under_load"] and len(C.compare(a, b, floors=True)) == 3
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    from posedet.cli import build_parser

    parser, _ = build_parser(["bench", "compare"])
    args = parser.parse_args(["bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                              "--out", str(tmp_path / "c.json")])
    assert C.main(args) == 0
    text = capsys.readouterr().out
    assert "1.200 !†" in text and "2 rows in both; 1 outside ±10%" in text
    assert json.loads((tmp_path / "c.json").read_text())["rows"][1]["ratio"] == 1.2
