"""The report's findings: what would resolve a claim (seeds needed, on hand-made numbers), one row per
claim with its cases folded beneath, "not tested here" (stand-in backbones, CPU-only timings), timings
under load, and a report that speaks to its readers (no issue numbers)."""
from __future__ import annotations

import json
import re

import pytest

from posedet.report import findings as FD
from posedet.report.common import md_escape, norm, pick_bench, preset_backbone, preset_steps
from test_report import _build, _merge_preset, make_tree


# ============================================================================== would-need (pure)

def test_expected_max_of_normals():
    assert FD.expected_max_normal(1) == 0.0
    assert FD.expected_max_normal(2) == pytest.approx(1 / 3.141592653589793 ** 0.5, abs=1e-4)   # 1/√π
    assert FD.expected_max_normal(3) == pytest.approx(0.8463, abs=1e-3)
    assert FD.expected_max_normal(10) == pytest.approx(1.5388, abs=1e-3)


def test_seeds_needed_unpaired_on_hand_made_numbers():
    # |Δ| > max(s), |Δ| > 2·√(2s²/n), |Δ| > 2·e_n·s
    assert FD.seeds_needed_unpaired(3.0, 1.0) == 2          # n = 2: 3 > 2·√1 = 2 and > 2·0.564
    assert FD.seeds_needed_unpaired(1.8, 1.0) == 3          # n = 2 fails (1.8 ≤ 2); n = 3: 1.8 > 1.633, > 1.693
    assert FD.seeds_needed_unpaired(1.0, 1.0) is None       # |Δ| ≤ std: never, whatever n
    assert FD.seeds_needed_unpaired(1.6, 1.0) is None       # > std, but the ranges overlap at every n
    assert FD.seeds_needed_unpaired(0.0, 1.0) is None
    assert FD.seeds_needed_unpaired(-3.0, 1.0) == 2         # the sign does not matter to resolve
    assert FD.seeds_needed_unpaired(3.0, 1.0, 0.5) == 2     # two arms' stds
    assert FD.seeds_needed_unpaired(1.0, 0.0) == 2          # no noise: the fewest seeds with a spread
    # the rule it mirrors: two seeds of std 1 in each arm resolve Δ = 3 but not Δ = 1.8 (2·SE = 2)
    h = 0.5 ** 0.5
    assert FD.compare_unpaired([3 - h, 3 + h], [-h, h], +1)["verdict"] == FD.HOLDS
    assert FD.compare_unpaired([1.8 - h, 1.8 + h], [-h, h], +1)["verdict"] == FD.NOT_RESOLVED


def test_seeds_needed_paired_on_hand_made_numbers():
    # |m| > s, |m| > 2·s/√n, |m| > e_n·s
    assert FD.seeds_needed_paired(3.0, 1.0) == 2
    assert FD.seeds_needed_paired(1.2, 1.0) == 3            # n = 2: 1.2 ≤ 2/√2; n = 3: 1.2 > 1.155, > 0.846
    assert FD.seeds_needed_paired(1.05, 1.0) == 4           # n = 4: 1.05 > 1 = 2/√4, > 1.029
    assert FD.seeds_needed_paired(1.0, 1.0) is None         # |m| ≤ std: never
    assert FD.seeds_needed_paired(0.5, 0.0) == 2


def test_would_need_text_says_below_the_noise_with_the_std():
    t = FD.would_need_text("unpaired", 0.3, 5.0, 2.5, unit="AP")
    assert "an effect of the paper's size (+0.3) is below this preset's noise at this budget" in t
    assert "an effect of the measured size (+5.0) would resolve with 3 seeds per arm" in t   # 5/2.5 = 2 > 1.693
    assert "seed std 2.5 AP" in t
    t = FD.would_need_text("paired", 14.2, None, 1.0, noise_note="of the per-seed differences")
    assert "an effect of the paper's size (+14.2) would resolve with 2 seeds per arm" in t
    assert "of the per-seed differences" in t
    assert FD.would_need_text("paired", None, None, 1.0) == ""


# ============================================================================== folding, gates (pure)

def test_fold_cases_majority_and_chain():
    H, C, U, T = FD.HOLDS, FD.CONTRADICTED, FD.NOT_RESOLVED, FD.NOT_TESTED
    f = lambda *vs, rule="majority": FD.fold_cases([(v, f"r{i}") for i, v in enumerate(vs)], rule)  # noqa: E731
    assert f(H)["verdict"] == H and f(C)["verdict"] == C
    assert f(U)["verdict"] == U and f(U)["reason"] == "r0"                  # one case: its own reason
    assert f(H, H, U)["verdict"] == H                                         # 2 of 3 hold, none against
    assert f(H, U)["verdict"] == U                                            # 1 of 2: not a majority
    assert f(H, H, C)["verdict"] == U and "1 contradicted" in f(H, H, C)["reason"]
    assert f(C, C, U)["verdict"] == C
    assert f(T, H)["verdict"] == H and "1 case not tested here" in f(T, H)["reason"]
    assert f(T, T)["verdict"] == T
    assert f()["verdict"] == U
    assert f(H, H, rule="chain")["verdict"] == H
    assert f(H, U, rule="chain")["verdict"] == U
    assert f(H, C, rule="chain")["verdict"] == C
    assert f(H, T, rule="chain")["verdict"] == T


def test_speed_gate_cpu_only_and_under_load():
    held = {"verdict": FD.HOLDS, "reason": "resolved beyond the spread", "effect": 2.5}
    r = FD.speed_gate(held, ["cpu"], False)
    assert r["verdict"] == FD.NOT_TESTED and "CPU only; the paper's figures are GPU figures" in r["reason"]
    assert r["effect"] == 2.5
    assert FD.speed_gate(held, ["gpu"], False) == held
    r = FD.speed_gate(held, ["gpu"], True)
    assert r["verdict"] == FD.NOT_RESOLVED and r["reason"].startswith("timed under load")
    assert FD.speed_gate(held, ["cpu"], True, paper_device=None)["verdict"] == FD.NOT_RESOLVED
    assert FD.timed_under_load({"load": {"timed_under_load": True}})
    assert FD.timed_under_load({"raw": {"load": {"timed_under_load": True, "loadavg_before": 3.1}}})
    assert not FD.timed_under_load({"name": "posedet"})              # a file from before the field
    assert not FD.timed_under_load({"load": None}) and not FD.timed_under_load(None)


def test_ranking_gate_stand_ins_and_steps():
    assert FD.ranking_gate([("hrnet_w48", "hrnet_w48", 100), ("hrnet_w32", "HRNet-W32", 100)]) is None
    why = FD.ranking_gate([("hrnet_w48", "hrnet_w18_small_v2", 290), ("hrnet_w32", "hrnet_w18_small", 590)])
    assert "stand-in backbones (hrnet_w48 → hrnet_w18_small_v2, hrnet_w32 → hrnet_w18_small)" in why
    assert "different step counts (hrnet_w48: 290, hrnet_w32: 590)" in why
    assert "step counts" in FD.ranking_gate([("dla34", "dla34", 100), ("hrnet_w32", None, 200)])


def test_common_helpers():
    assert md_escape("a|b\nc") == "a\\|b c" and norm("HRNet-W48") == norm("hrnet_w48")
    preset = {"backbones": {"dla34": "mobilenetv3_small_050",
                            "hrnet_w32": {"model": "hrnet_w18_small", "set": ["train.iterations=590"]}}}
    assert preset_backbone(preset, "dla34") == "mobilenetv3_small_050"
    assert preset_backbone(preset, "hrnet_w32") == "hrnet_w18_small" and preset_backbone(preset, "x") is None
    assert preset_steps(preset, "hrnet_w32") == 590 and preset_steps(preset, "dla34") is None
    rows = [{"name": "posedet", "backbone": "hrnet_w48", "short_side": 640, "device_kind": "cpu", "dtype": "float32",
             "fps": 2.0, "network_ms": 500.0},
            {"name": "HigherHRNet-style", "backbone": "hrnet_w48", "short_side": 640, "device_kind": "cpu",
             "dtype": "float32", "fps": 1.0, "network_ms": 1000.0}]
    assert pick_bench(rows, device_kind="cpu", backbone="hrnet_w48")["fps"] == 2.0
    assert pick_bench(rows, device_kind="cpu", peer="higher_hrnet", backbone="hrnet_w48",
                      need="network_ms")["fps"] == 1.0
    assert pick_bench(rows, device_kind="gpu", backbone="hrnet_w48") is None


# ============================================================================== on a results tree

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fake tree with a CPU-only bench (the hrnet_w32 rows added, the GPU rows dropped), the
    synthetic preset's stand-in mapping, and the people sweep timed under load."""
    tmp = tmp_path_factory.mktemp("fd")
    tree = make_tree(tmp)
    bench = tree["results"] / "bench" / "table.json"
    d = json.loads(bench.read_text())
    sp = lambda med: {"p10_ms": med * 0.95, "p90_ms": med * 1.05, "n": 5}  # noqa: E731
    d["rows"] = [r for r in d["rows"] if r.get("device") == "cpu"] + [
        {"name": "posedet", "backbone": "hrnet_w32", "input_short_side": 512, "device": "cpu", "dtype": "float32",
         "network_ms": 200.0, "fps": 5.0, "spread": sp(200.0)},
        {"name": "posedet", "backbone": "dla34", "input_short_side": 512, "device": "cpu", "dtype": "float32",
         "network_ms": 80.0, "fps": 12.5, "spread": sp(80.0)}]
    d["sweep"] = [{"name": "posedet", "backbone": "dla34", "device": "cpu", "people": p, "network_ms": 80.0,
                   "spread": sp(80.0), "load": {"timed_under_load": True, "other_cpu_cores_before": 1.6,
                                                "loadavg_before": 3.2}} for p in (1, 30)]
    bench.write_text(json.dumps(d))
    _merge_preset(tree, "backbones:\n  dla34: mobilenetv3_small_050\n"
                        "  hrnet_w32: {model: hrnet_w18_small, set: [train.iterations=590]}\n"
                        "  hrnet_w48: {model: hrnet_w18_small_v2, set: [train.iterations=290]}\n")
    out, res = _build(tree, tmp)
    return tree, out, res


def _claim(res, part: str) -> FD.Claim:
    hits = [c for c in res["findings"] if part in c.claim]
    assert len(hits) == 1, [c.claim for c in hits]
    return hits[0]


def test_one_row_per_claim_with_folded_cases(built):
    _, out, res = built
    claims = res["findings"]
    md = (out / "summary.md").read_text()
    top = [ln for ln in md.splitlines() if ln.startswith("- **")]
    assert len(top) == len(claims) == 12
    c = FD.counts(claims)
    assert f"**12 claims: {c[FD.HOLDS]} hold, {c[FD.CONTRADICTED]} contradicted, {c[FD.NOT_RESOLVED]} not " \
           f"resolved, {c[FD.NOT_TESTED]} not tested here.**" in md
    # Figure 3 on one set, two protocols: one row, two indented cases
    fig3 = _claim(res, "suppresses fewer true poses")
    assert len(fig3.cases) == 2 and fig3.verdict == FD.NOT_RESOLVED       # holds under one, contradicted under the other
    i = next(k for k, ln in enumerate(md.splitlines()) if "suppresses fewer true poses" in ln and ln.startswith("- "))
    following = md.splitlines()[i + 1:i + 3]
    assert all(ln.startswith("  - GT upper bound on crowdpose_val") for ln in following), following
    # TTA on three models: one claim, three cases
    assert len(_claim(res, "TTA raises AP").cases) == 3 and _claim(res, "TTA").source == "Tables 2, 3"
    # index.html: one verdict cell per claim, the cases in a <details>
    page = (out / "index.html").read_text()
    assert page.count("class='verdict'") == 12
    assert page.count("<details><summary>") == sum(len(c.cases) > 1 for c in claims)
    assert "<summary>2 cases</summary>" in page


def test_not_resolved_claims_say_what_would_resolve_them(built):
    _, out, res = built
    cen = _claim(res, "Keypoint-centroid")
    assert cen.verdict == FD.NOT_RESOLVED
    # +0.3 AP(H) (the paper) against the baseline's seed std 2.0: beyond reach; the measured +6.3: 2 seeds
    assert "an effect of the paper's size (+0.3) is below this preset's noise at this budget" in cen.would_need
    assert "the measured size (+6.3) would resolve with 2 seeds per arm" in cen.would_need
    assert "seed std 2 AP_hard" in cen.would_need and "n = 1 in an arm" in cen.would_need
    md = (out / "summary.md").read_text()
    assert "What would resolve it: an effect of the paper's size (+0.3)" in md
    # no arm with a spread (both n = 1): the seeded baseline's std on the same metric, and it says so
    peer = _finding(res, "YOLO11n-pose", "COCO layout")
    assert "the std of baseline's 3 seeds on synth_crowdpose-val" in peer.would_need


def _finding(res, claim_part: str, compared_part: str = ""):
    hits = [f for f in res["cases"] if claim_part in f.claim and compared_part in f.compared]
    assert len(hits) == 1, [(f.claim, f.compared) for f in hits]
    return hits[0]


def test_stand_in_backbones_and_cpu_speed_are_not_tested_here(built):
    _, out, res = built
    rank = _claim(res, "Backbone ranking by AP")
    assert rank.verdict == FD.NOT_TESTED
    assert "stand-in backbones" in rank.result["reason"]
    assert all(f.verdict == FD.NOT_TESTED for f in rank.cases)
    for part in ("faster than bottom-up HigherHRNet", "Backbone ranking by speed"):
        c = _claim(res, part)
        assert c.verdict == FD.NOT_TESTED, (part, c.result)
        assert "timed on CPU only; the paper's figures are GPU figures" in c.result["reason"]
    md = (out / "summary.md").read_text()
    assert "**not tested here: timed on CPU only" in md
    assert "not resolved: n = 1 seed in an arm" not in "".join(
        ln for ln in md.splitlines() if "Backbone ranking by AP" in ln)


def test_stand_in_detected_from_the_preset_mapping(tmp_path):
    """Without a trained config naming the backbone, the preset's backbones: mapping decides; equal
    names and step counts leave the ranking testable."""
    tree = make_tree(tmp_path)
    for var in ("dla34", "hrnet_w32", "hrnet_w48"):
        p = tree["results"] / "synth_coco" / var / "seed0" / "train" / "summary.json"
        p.write_text(json.dumps({"wall_s": 61.5, "status": "complete"}))
    _merge_preset(tree, "backbones:\n  hrnet_w32: {model: hrnet_w18_small, set: [train.iterations=590]}\n")
    _, res = _build(tree, tmp_path)
    rank = _claim(res, "Backbone ranking by AP")
    assert rank.verdict == FD.NOT_TESTED and "hrnet_w32 → hrnet_w18_small" in rank.result["reason"]
    import yaml
    preset = tree["repo"] / "configs" / "presets" / f"{tree['preset']}.yaml"
    doc = yaml.safe_load(preset.read_text())
    doc.pop("backbones")
    preset.write_text(yaml.safe_dump(doc, sort_keys=False))
    _, res = _build(tree, tmp_path)
    rank = _claim(res, "Backbone ranking by AP")
    assert rank.verdict == FD.NOT_RESOLVED and "n = 1" in rank.result["reason"]    # testable, one seed each


def test_timed_under_load_is_not_resolved(built):
    _, out, res = built
    sweep = _claim(res, "does not grow with the number of people")
    assert sweep.verdict == FD.NOT_RESOLVED and sweep.result["reason"].startswith("timed under load")
    assert "idle machine" in sweep.would_need
    assert "timed under load" in (out / "summary.md").read_text()


def test_no_issue_numbers_or_internal_goals(built):
    _, out, res = built
    for name in ("summary.md", "index.html"):
        text = (out / name).read_text()
        assert not re.search(r"\bissues?\b", text, re.I), name
    md = (out / "summary.md").read_text()
    assert "the harness's goal: PoseDet/YOLO11n-pose AP ratio ≥ 1.2" in md
