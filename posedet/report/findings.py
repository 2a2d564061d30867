"""The paper's claims, each with what was measured here and a verdict computed from the results files.

Two layers:

* verdict rules, pure functions on plain numbers (no files; docs/report.md, "Verdicts"):
  ``compare_unpaired`` (two different models: per-seed values of each), ``compare_paired`` (two
  outputs of the same models: per-seed differences), ``compare_timing`` (two bench rows: median and
  p10–p90 of the timed calls), ``compare_no_growth`` (time at the fewest vs the most people) and
  ``compare_counts`` (the model-free upper bound: poses suppressed per NMS threshold);
  ``fold_cases`` (one verdict per claim from its cases), ``speed_gate`` (CPU-only timings, timings
  under load), ``ranking_gate`` (stand-in backbones, unequal step counts) and the would-need rules
  ``seeds_needed_unpaired`` / ``seeds_needed_paired`` (how many seeds would resolve an effect);
* ``collect_findings(ctx, studies)`` reads the results through the report's ``Context``, applies
  a rule to each case of each claim and returns ``Finding`` records (one per case);
  ``collect_claims`` folds them into ``Claim`` records (one per paper claim); ``render_markdown``
  and ``render_html`` print the claims (``summary.md``, the top of ``index.html``).

Verdicts: **holds** (resolved, same sign as the paper), **contradicted** (resolved, opposite sign),
**not resolved** (within the spread, n < 2, timed under load, or an input missing), **not tested
here** (the preset's design cannot test the claim: stand-in backbones, CPU-only timings of a GPU
figure). A difference within the spread is never "holds".
"""
from __future__ import annotations

import functools
import html
import math
import re
import statistics
from dataclasses import dataclass, field

from posedet.report.common import md_escape, norm, pick_bench, preset_backbone, preset_steps
from posedet.report.paper_numbers import paper_row
from posedet.report.tables import PEER_LABELS, ablation_models, bench_rows

__all__ = ["HOLDS", "CONTRADICTED", "NOT_RESOLVED", "NOT_TESTED", "Finding", "Claim", "compare_unpaired",
           "compare_paired", "compare_timing", "compare_no_growth", "compare_counts", "expected_sign",
           "expected_max_normal", "seeds_needed_unpaired", "seeds_needed_paired", "would_need_text",
           "fold_cases", "speed_gate", "ranking_gate", "timed_under_load", "figure3_rows", "figure3_verdict",
           "suppresses_fewer", "collect_findings", "collect_claims", "render_markdown", "render_html",
           "NO_GROWTH_TOLERANCE", "PEER_RATIO_GOAL", "MAX_SEEDS"]

HOLDS, CONTRADICTED, NOT_RESOLVED, NOT_TESTED = "holds", "contradicted", "not resolved", "not tested here"
NO_GROWTH_TOLERANCE = 0.10      # "time does not grow with people": at most +10 % from fewest to most
PEER_RATIO_GOAL = 1.2           # the harness's goal: PoseDet AP / YOLO11n-pose AP on the CrowdPose-layout set
MAX_SEEDS = 20                  # the most seeds per arm a preset can afford: beyond it, "below the noise"


# ============================================================================== verdict rules (pure)

def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _g(x: float) -> str:
    return f"{x:.3g}"


def _result(verdict: str, reason: str, *, effect=None, spread=None, n=None, **extra) -> dict:
    return {"verdict": verdict, "reason": reason, "effect": effect, "spread": spread, "n": n, **extra}


def _missing(what: str = "") -> dict:
    return _result(NOT_RESOLVED, "input missing" + (f": {what}" if what else ""))


def _resolved(expected: int, **kw) -> dict:
    verdict = HOLDS if _sign(kw["effect"]) == expected else CONTRADICTED
    return _result(verdict, "resolved beyond the spread", **kw)


def expected_sign(paper_effect: float | None, claimed: int = 1) -> int:
    """The sign a finding must have to hold: the paper's printed effect where it is not zero, else the
    direction the paper's text claims (``claimed``: +1 the first arm is higher/faster)."""
    if paper_effect is not None and _sign(paper_effect) != 0:
        return _sign(paper_effect)
    return claimed


def compare_unpaired(treat: list[float] | None, ref: list[float] | None, expected: int,
                     missing: str = "") -> dict:
    """Two different models, one value per seed each. Effect Δ = mean(treat) − mean(ref); spread =
    the larger sample std of the two arms. Resolved iff both arms have n ≥ 2, |Δ| > spread, the
    seed ranges [min, max] of the arms do not overlap, and |Δ| > 2·SE, SE = √(s₁²/n₁ + s₂²/n₂)."""
    if not treat or not ref:
        return _missing(missing)
    t, r = [float(x) for x in treat], [float(x) for x in ref]
    d = statistics.fmean(t) - statistics.fmean(r)
    n = (len(t), len(r))
    if min(n) < 2:
        return _result(NOT_RESOLVED, f"n = {min(n)} seed in an arm: no spread", effect=d, n=n)
    st, sr = statistics.stdev(t), statistics.stdev(r)
    spread = max(st, sr)
    se = math.sqrt(st ** 2 / len(t) + sr ** 2 / len(r))
    overlap = min(t) <= max(r) and min(r) <= max(t)
    kw = dict(effect=d, spread=spread, n=n, se=se)
    if abs(d) <= spread:
        return _result(NOT_RESOLVED, f"within the seed spread (|Δ| {_g(abs(d))} ≤ std {_g(spread)})", **kw)
    if overlap:
        return _result(NOT_RESOLVED, "within the seed spread (the arms' seed ranges overlap)", **kw)
    if abs(d) <= 2 * se:
        return _result(NOT_RESOLVED, f"within the seed spread (|Δ| {_g(abs(d))} ≤ 2·SE {_g(2 * se)})", **kw)
    return _resolved(expected, **kw)


def compare_paired(diffs: list[float] | None, expected: int, missing: str = "") -> dict:
    """Two outputs of the same models, one difference per seed (treat − ref of seed k). Effect = the
    mean difference m, spread = the differences' sample std s. Resolved iff n ≥ 2, every difference
    has the same (non-zero) sign, |m| > s and |m| > 2·s/√n."""
    if not diffs:
        return _missing(missing)
    d = [float(x) for x in diffs]
    m, n = statistics.fmean(d), len(d)
    if n < 2:
        return _result(NOT_RESOLVED, "n = 1 seed: no spread", effect=m, n=n)
    s = statistics.stdev(d)
    kw = dict(effect=m, spread=s, n=n, se=s / math.sqrt(n))
    if not (all(x > 0 for x in d) or all(x < 0 for x in d)):
        return _result(NOT_RESOLVED, "within the seed spread (the per-seed differences are not all of one sign)",
                       **kw)
    if abs(m) <= s:
        return _result(NOT_RESOLVED, f"within the seed spread (|mean| {_g(abs(m))} ≤ std {_g(s)})", **kw)
    if abs(m) <= 2 * s / math.sqrt(n):
        two_se = 2 * s / math.sqrt(n)
        return _result(NOT_RESOLVED, f"within the seed spread (|mean| {_g(abs(m))} ≤ 2·SE {_g(two_se)})", **kw)
    return _resolved(expected, **kw)


def _timing_ok(t: dict | None) -> bool:
    return bool(t) and all(isinstance(t.get(k), (int, float)) and t[k] > 0 for k in ("median_ms", "lo_ms", "hi_ms"))


def compare_timing(treat: dict | None, ref: dict | None, expected: int, missing: str = "") -> dict:
    """Two bench rows, each {median_ms, lo_ms, hi_ms, n} (lo/hi: p10/p90 of the timed calls). Effect =
    speed-up ref_ms / treat_ms (> 1: treat is faster). Resolved iff each row has n ≥ 2 timed calls
    and the [lo, hi] intervals are disjoint; sign +1 when treat is faster."""
    if not treat or not ref or not treat.get("median_ms") or not ref.get("median_ms"):
        return _missing(missing)
    ratio = ref["median_ms"] / treat["median_ms"]
    n = (treat.get("n"), ref.get("n"))
    if not (_timing_ok(treat) and _timing_ok(ref)):
        return _result(NOT_RESOLVED, "no spread recorded", effect=ratio, n=n)
    if min(x or 0 for x in n) < 2:
        return _result(NOT_RESOLVED, f"n = {min(x or 0 for x in n)} timed call: no spread", effect=ratio, n=n)
    if treat["hi_ms"] < ref["lo_ms"]:
        sign = 1
    elif treat["lo_ms"] > ref["hi_ms"]:
        sign = -1
    else:
        return _result(NOT_RESOLVED, "within the spread (the p10–p90 intervals overlap)", effect=ratio, n=n)
    return _result(HOLDS if sign == expected else CONTRADICTED, "resolved beyond the spread", effect=ratio, n=n)


def compare_no_growth(few: dict | None, many: dict | None, tolerance: float = NO_GROWTH_TOLERANCE,
                      missing: str = "") -> dict:
    """Time at the fewest people (``few``) vs the most (``many``), bench rows as in ``compare_timing``.
    Effect = many/few median ratio. Holds iff even the spread's far ends stay within the tolerance
    (many.hi / few.lo ≤ 1 + tolerance); contradicted iff even the near ends exceed it
    (many.lo / few.hi > 1 + tolerance); otherwise not resolved. Needs n ≥ 2 timed calls each."""
    if not few or not many or not few.get("median_ms") or not many.get("median_ms"):
        return _missing(missing)
    ratio = many["median_ms"] / few["median_ms"]
    n = (few.get("n"), many.get("n"))
    if not (_timing_ok(few) and _timing_ok(many)):
        return _result(NOT_RESOLVED, "no spread recorded", effect=ratio, n=n)
    if min(x or 0 for x in n) < 2:
        return _result(NOT_RESOLVED, f"n = {min(x or 0 for x in n)} timed call: no spread", effect=ratio, n=n)
    worst, best = many["hi_ms"] / few["lo_ms"], many["lo_ms"] / few["hi_ms"]
    if worst <= 1 + tolerance:
        return _result(HOLDS, f"resolved: grows ≤ {tolerance:.0%} even at the spread's ends", effect=ratio, n=n)
    if best > 1 + tolerance:
        return _result(CONTRADICTED, f"resolved: grows > {tolerance:.0%} beyond the spread", effect=ratio, n=n)
    return _result(NOT_RESOLVED, f"within the spread (p10–p90 ratio {best:.2f}–{worst:.2f})", effect=ratio, n=n)


def compare_counts(rows: list[tuple[float, int, int]] | None, expected: int = 1, missing: str = "") -> dict:
    """Model-free (Figure 3): (threshold, suppressed by OKS-NMS, suppressed by IoU-NMS) per threshold
    below 1. Effect per threshold: IoU − OKS (> 0: OKS-NMS suppresses fewer true poses). The counts are
    exact (no seeds); the thresholds are the replicates: resolved iff the counts differ at ≥ 2
    thresholds and every difference has the same sign (equal counts carry no evidence)."""
    if not rows:
        return _missing(missing)
    diffs = [(thr, iou - oks) for thr, oks, iou in rows if thr < 1.0]
    differ = [d for _, d in diffs if d != 0]
    n = len(differ)
    pos = sum(d > 0 for d in differ)
    kw = dict(effect=pos, n=n, thresholds=len(diffs))
    if n < 2:
        return _result(NOT_RESOLVED, f"the counts differ at {n} threshold(s): n < 2", **kw)
    if 0 < pos < n:
        return _result(NOT_RESOLVED, f"mixed: IoU-NMS suppresses more at {pos} of {n} thresholds", **kw)
    sign = 1 if pos == n else -1
    return _result(HOLDS if sign == expected else CONTRADICTED, "resolved: the same sign at every threshold", **kw)


def suppresses_fewer(oks_suppressed: int, iou_suppressed: int) -> bool:
    """Figure 3 at one threshold: the paper's finding (OKS-NMS suppresses fewer true poses) is seen
    there iff IoU-NMS suppresses more."""
    return iou_suppressed > oks_suppressed


def figure3_rows(study: dict) -> list[tuple[float, int, int]]:
    """(threshold, suppressed by OKS-NMS, suppressed by IoU-NMS) of an upper-bound study, thresholds < 1."""
    by = {(r["nms"], round(float(r["threshold"]), 4)): r for r in study.get("rows", [])}
    return [(t, by[("oks", t)]["num_suppressed"], by[("iou", t)]["num_suppressed"])
            for t in sorted({t for _, t in by}) if ("oks", t) in by and ("iou", t) in by and t < 1.0]


def figure3_verdict(study: dict) -> dict:
    """Figure 3's one rule on one (set, protocol) study: ``compare_counts`` of its suppressed counts.
    Every page (summary.md, index.html, the Figure 3 captions and figure3_summary.*) prints this."""
    return compare_counts(figure3_rows(study), 1, study.get("_file", ""))


# ------------------------------------------------------------------------------ would-need (pure)

@functools.lru_cache(maxsize=None)
def expected_max_normal(n: int) -> float:
    """e_n: the expected largest of n independent standard normal values (e_1 = 0, e_2 = 0.564,
    e_3 = 0.846, e_5 = 1.163, e_10 = 1.539); numerical integration of x·n·φ(x)·Φ(x)^(n−1)."""
    if n <= 1:
        return 0.0
    nd = statistics.NormalDist()
    h, lo, hi = 0.005, -8.0, 8.0
    steps = int((hi - lo) / h)
    tot = 0.0
    for i in range(steps + 1):
        x = lo + i * h
        w = 0.5 if i in (0, steps) else 1.0
        tot += w * x * n * nd.pdf(x) * nd.cdf(x) ** (n - 1)
    return tot * h


def seeds_needed_unpaired(effect: float, std_a: float, std_b: float | None = None,
                          max_n: int = MAX_SEEDS) -> int | None:
    """Seeds per arm at which ``compare_unpaired`` resolves a difference Δ = ``effect`` between two arms
    of seed std s_A, s_B (s_B = s_A when not given), with each arm's std and range at their expected
    values for normal seeds: the smallest n in 2..max_n with |Δ| > max(s_A, s_B) (the spread),
    |Δ| > 2·√((s_A² + s_B²)/n) (2·SE) and |Δ| > e_n·(s_A + s_B) (the seed ranges do not overlap:
    mean ± e_n·s is an arm's expected max/min). None: no n up to max_n (the first condition does not
    depend on n and the third grows with n, so none beyond it either)."""
    d = abs(float(effect))
    sa = abs(float(std_a))
    sb = sa if std_b is None else abs(float(std_b))
    if d == 0:
        return None
    for n in range(2, max_n + 1):
        if d > max(sa, sb) and d > 2 * math.sqrt((sa ** 2 + sb ** 2) / n) and d > expected_max_normal(n) * (sa + sb):
            return n
    return None


def seeds_needed_paired(effect: float, std: float, max_n: int = MAX_SEEDS) -> int | None:
    """Seeds at which ``compare_paired`` resolves a mean per-seed difference m = ``effect`` whose
    differences have std s, at expected values for normal seeds: the smallest n in 2..max_n with
    |m| > s, |m| > 2·s/√n and |m| > e_n·s (the smallest difference, m − e_n·s, keeps the sign).
    None: no n up to max_n."""
    m, sd = abs(float(effect)), abs(float(std))
    if m == 0:
        return None
    for n in range(2, max_n + 1):
        if m > sd and m > 2 * sd / math.sqrt(n) and m > expected_max_normal(n) * sd:
            return n
    return None


def would_need_text(kind: str, paper_effect: float | None, measured_effect: float | None, std: float,
                    std_b: float | None = None, unit: str = "", noise_note: str = "",
                    max_n: int = MAX_SEEDS) -> str:
    """'What would resolve it' for a seeded case: seeds per arm for an effect of the paper's size and
    of the measured size (``kind``: 'unpaired' or 'paired'); beyond ``max_n``: below this preset's
    noise at this budget, with the noise figure (the seed std)."""
    std = 0.0 if abs(std) < 1e-9 else std
    std_b = None if std_b is None else (0.0 if abs(std_b) < 1e-9 else std_b)
    rule = (lambda e: seeds_needed_unpaired(e, std, std_b, max_n)) if kind == "unpaired" else \
        (lambda e: seeds_needed_paired(e, std, max_n))
    noise = f"seed std {std:.2g}" + (f" / {std_b:.2g}" if std_b is not None and std_b != std else "") \
        + (f" {unit}" if unit else "") + (f", {noise_note}" if noise_note else "")
    parts = []
    for label, e in (("the paper's size", paper_effect), ("the measured size", measured_effect)):
        if e is None:
            continue
        if abs(e) < 0.05:
            parts.append(f"an effect of {label} ({e:+.1f}) is no effect: no n resolves it")
            continue
        n = rule(e)
        parts.append(f"an effect of {label} ({e:+.1f}) would resolve with {n} seeds per arm" if n else
                     f"an effect of {label} ({e:+.1f}) is below this preset's noise at this budget "
                     f"(no n ≤ {max_n} resolves it)")
    if not parts:
        return ""
    return "; ".join(parts) + f" ({noise})"


# ------------------------------------------------------------------------------ gates and folding (pure)

def timed_under_load(row: dict | None) -> bool:
    """A bench row (raw, as in bench/table.json) timed while other work held the CPU cores: its
    ``load.timed_under_load``; False for rows written before the field existed."""
    if not isinstance(row, dict):
        return False
    raw = row.get("raw") if isinstance(row.get("raw"), dict) else row
    return bool((raw.get("load") or {}).get("timed_under_load", False))


def speed_gate(res: dict, devices: list[str], under_load: bool, paper_device: str | None = "gpu") -> dict:
    """A speed case's verdict after the design checks: **not tested here** when every row it rests on
    was timed on another kind of device than the paper's figures (``paper_device``, e.g. CPU-only
    timings of the paper's GPU FPS); else **not resolved: timed under load** when any row was timed
    under load. Otherwise ``res`` unchanged."""
    devs = [str(d or "").lower() for d in devices if d]
    if paper_device and devs and all(d != paper_device for d in devs):
        why = f"timed on {'/'.join(sorted({d.upper() for d in devs}))} only; the paper's figures are " \
              f"{paper_device.upper()} figures"
        return {**res, "verdict": NOT_TESTED, "reason": why + ("; also timed under load" if under_load else "")}
    if under_load:
        return {**res, "verdict": NOT_RESOLVED, "reason": "timed under load (bench row load.timed_under_load)"}
    return res


def ranking_gate(arms: list[tuple[str, str | None, object]]) -> str | None:
    """Backbone ranking by AP: ``arms`` = (paper backbone, backbone trained here, training steps or None).
    The reason the preset cannot test the ranking (a stand-in backbone: trained name ≠ paper name; or
    arms trained for different step counts), None when it can."""
    why = []
    stand = [f"{p} → {t}" for p, t, _ in arms if t and norm(t) != norm(p)]
    if stand:
        why.append("the preset trains stand-in backbones (" + ", ".join(stand) + ")")
    steps = [(p, s) for p, _, s in arms if s is not None]
    if len(steps) >= 2 and len({str(s) for _, s in steps}) > 1:
        why.append("trained for different step counts (" + ", ".join(f"{p}: {s}" for p, s in steps) + ")")
    return "; ".join(why) or None


def fold_cases(verdicts: list[tuple[str, str]], rule: str = "majority") -> dict:
    """One claim's verdict from its cases' (verdict, reason).

    ``majority`` (replications: one claim on several sets, protocols, models, metrics): cases not
    tested here are set aside; holds iff more than half of the rest hold and none is contradicted;
    contradicted iff more than half are contradicted and none holds; otherwise not resolved.
    ``chain`` (an ordering tested link by link, e.g. W48 > W32 > DLA-34): not tested here if any link
    is; contradicted if any link is contradicted; holds iff every link holds; otherwise not resolved.
    No cases: not resolved (input missing); every case not tested: not tested here."""
    if not verdicts:
        return {"verdict": NOT_RESOLVED, "reason": "input missing: no case measured"}
    untested = [r for v, r in verdicts if v == NOT_TESTED]
    tested = [v for v, _ in verdicts if v != NOT_TESTED]
    h, c = tested.count(HOLDS), tested.count(CONTRADICTED)
    u, n = len(tested) - h - c, len(tested)
    why_untested = "; ".join(dict.fromkeys(untested))
    open_why = list(dict.fromkeys(r for v, r in verdicts if v == NOT_RESOLVED))
    why_open = f" ({open_why[0]})" if len(open_why) == 1 else ""
    if rule == "chain":
        if untested:
            return {"verdict": NOT_TESTED, "reason": why_untested}
        if c:
            return {"verdict": CONTRADICTED, "reason": f"{c} of {n} links contradicted"}
        if h == n:
            return {"verdict": HOLDS, "reason": f"every link holds ({n} of {n})"}
        return {"verdict": NOT_RESOLVED, "reason": f"{h} of {n} links hold, {u} not resolved{why_open}"}
    if not tested:
        return {"verdict": NOT_TESTED, "reason": why_untested}
    aside = f"; {len(untested)} case{'s' if len(untested) > 1 else ''} not tested here" if untested else ""
    if h * 2 > n and c == 0:
        return {"verdict": HOLDS, "reason": f"on {h} of {n} cases" + aside}
    if c * 2 > n and h == 0:
        return {"verdict": CONTRADICTED, "reason": f"on {c} of {n} cases" + aside}
    if n == 1:
        return {"verdict": NOT_RESOLVED, "reason": next(r for v, r in verdicts if v != NOT_TESTED)}
    return {"verdict": NOT_RESOLVED,
            "reason": f"{h} of {n} cases hold, {c} contradicted, {u} not resolved{why_open}" + aside}


# ============================================================================== claims

@dataclass
class Finding:
    claim: str                 # the paper's claim, in words
    source: str                # where the paper makes it ("Table 4")
    compared: str              # what is compared here
    result: dict               # a compare_* result
    measured: str = ""         # the effect here, with spread and n
    paper: str = ""            # the paper's effect
    link: str = ""             # anchor in index.html (no '#')
    extra: dict = field(default_factory=dict)
    would_need: str = ""       # what would resolve it (a case that is not resolved)
    rule: str = "majority"     # how the claim's cases fold (``fold_cases``)

    @property
    def verdict(self) -> str:
        return self.result["verdict"]


@dataclass
class Claim:
    """One paper claim: its cases (``Finding``s, the first is the headline) folded into one verdict."""
    claim: str
    cases: list[Finding]
    result: dict               # fold_cases(...)

    @property
    def verdict(self) -> str:
        return self.result["verdict"]

    @property
    def headline(self) -> Finding:
        return self.cases[0]

    @property
    def source(self) -> str:
        src = list(dict.fromkeys(f.source for f in self.cases))
        if len(src) > 1 and all(x.startswith("Table ") for x in src):
            return "Tables " + ", ".join(sorted(x.split(" ", 1)[1] for x in src))
        return ", ".join(src)

    @property
    def would_need(self) -> str:
        """The headline's, else the first unresolved case's (named)."""
        for f in [self.headline] + self.cases:
            if f.would_need and f.verdict == NOT_RESOLVED:
                return f.would_need if f is self.headline else f"({f.compared}) {f.would_need}"
        return ""


def collect_claims(findings: list[Finding]) -> list[Claim]:
    """The cases grouped by claim (first-seen order), each claim's verdict from ``fold_cases``."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.claim, []).append(f)
    return [Claim(c, fs, fold_cases([(f.verdict, f.result["reason"]) for f in fs], fs[0].rule))
            for c, fs in groups.items()]



def _paper_diff(a: tuple[int, str], b: tuple[int, str], metric: str) -> float | None:
    ra, rb = paper_row(*a), paper_row(*b)
    if not ra or not rb or ra.get(metric) is None or rb.get(metric) is None:
        return None
    return ra[metric] - rb[metric]


def _paper_text(effect: float | None, unit: str = "", note: str = "") -> str:
    if effect is None:
        return note or "not printed"
    return f"{effect:+.1f}{unit}" + (f" ({note})" if note else "")


def _arm(vals: dict[int, float]) -> str:
    v = list(vals.values())
    if not v:
        return "—"
    m = statistics.fmean(v)
    return f"{m:.1f} ± {statistics.stdev(v):.1f}" if len(v) >= 2 else f"{m:.1f}"


def _vals(ctx, ds, var, set_slug, mode, nms, metric) -> dict[int, float]:
    """{seed: value ×100} of one model's metric (empty when anything is missing)."""
    if not (ds and var and set_slug):
        return {}
    return {k: 100.0 * v for k, v in ctx.inputs.seed_values(ds, var, set_slug, mode, nms, metric).items()}


def _where(ctx, ds, var, set_slug, mode, nms) -> str:
    return f"results/{ctx.preset_name}/{ds or '<dataset>'}/{var or '<variant>'}/seed*/metrics/" \
           f"{set_slug or '<set>'}.{mode}.{nms}.json"


def _baseline_noise(ctx, metric: str) -> tuple[float | None, str]:
    """The seed std of the seeded baseline arm (Table 4/5's baseline, refined, OKS-NMS) on ``metric``:
    the noise figure where an arm has n = 1."""
    try:
        ds, models = ablation_models(ctx)
        base = models.get((True, "keypoints", True))
        s = ctx.eval_set("crowdpose_ablation", ds, base, "table4") if ds else None
        v = list(_vals(ctx, ds, base, s, "refined", "oks", metric).values())
    except Exception:          # noqa: BLE001 -- no baseline: no noise figure
        return None, ""
    if len(v) < 2:
        return None, ""
    return statistics.stdev(v), f"{base}'s {len(v)} seeds on {s}"


def _unpaired_need(ctx, res, va, vb, metric, paper_effect) -> str:
    if res["verdict"] != NOT_RESOLVED or res["effect"] is None:
        return ""
    sa = statistics.stdev(va.values()) if len(va) >= 2 else None
    sb = statistics.stdev(vb.values()) if len(vb) >= 2 else None
    note = ""
    if sa is None or sb is None:
        if sa is None and sb is None:
            base, where = _baseline_noise(ctx, metric)
            if base is None:
                return "no seeded arm to take a noise figure from: train ≥ 2 seeds per arm"
            sa = sb = base
            note = f"n = 1 in both arms: the std of {where}"
        else:
            sa = sb = sa if sa is not None else sb
            note = "n = 1 in an arm: the seeded arm's std for both"
    return would_need_text("unpaired", paper_effect, res["effect"], sa, sb if sb != sa else None, metric, note)


def _paired_need(ctx, res, diffs, metric, paper_effect) -> str:
    if res["verdict"] != NOT_RESOLVED or res["effect"] is None:
        return ""
    if len(diffs) >= 2:
        return would_need_text("paired", paper_effect, res["effect"], statistics.stdev(diffs), None, metric,
                               "of the per-seed differences")
    base, where = _baseline_noise(ctx, metric)
    if base is None:
        return "one seed: no spread of the differences and no seeded arm to take one from: evaluate ≥ 2 seeds"
    return would_need_text("paired", paper_effect, res["effect"], base, None, metric,
                           f"n = 1: the std of {where} in place of the differences' std (no smaller)")


def _unpaired_finding(ctx, claim, source, compared, metric, a, b, paper_effect, paper_note, link,
                      claimed: int = 1) -> Finding:
    """a, b: (dataset, variant, set, mode, nms) of the two arms; a is the arm the paper says is higher."""
    va, vb = _vals(ctx, *a, metric), _vals(ctx, *b, metric)
    miss = " and ".join(_where(ctx, *x) for x, v in ((a, va), (b, vb)) if not v)
    res = compare_unpaired(list(va.values()), list(vb.values()), expected_sign(paper_effect, claimed), miss)
    measured = "—"
    if res["effect"] is not None:
        measured = (f"{res['effect']:+.1f} {metric} ({_arm(va)} vs {_arm(vb)}; n = {len(va)} / {len(vb)} seeds"
                    + (f", spread {res['spread']:.1f}" if res.get("spread") is not None else "") + ")")
    return Finding(claim, source, compared, res, measured, _paper_text(paper_effect, "", paper_note), link,
                   {"treat": va, "ref": vb, "metric": metric},
                   would_need=_unpaired_need(ctx, res, va, vb, metric, paper_effect))


def _paired_finding(ctx, claim, source, compared, metric, a, b, paper_effect, paper_note, link,
                    claimed: int = 1, metric_b: str | None = None, c=None, d=None) -> Finding:
    """Per-seed differences a − b (same models); with ``c, d`` the difference of differences
    (a − b on ``metric``) − (c − d on ``metric_b``)."""
    va, vb = _vals(ctx, *a, metric), _vals(ctx, *b, metric)
    parts = [(a, va), (b, vb)]
    if c is not None:
        vc, vd = _vals(ctx, *c, metric_b), _vals(ctx, *d, metric_b)
        parts += [(c, vc), (d, vd)]
    seeds = sorted(set.intersection(*(set(v) for _, v in parts)))
    diffs = [va[s] - vb[s] - ((vc[s] - vd[s]) if c is not None else 0.0) for s in seeds]
    miss = " and ".join(sorted({_where(ctx, *x) for x, v in parts if not v}))
    res = compare_paired(diffs, expected_sign(paper_effect, claimed), miss or "no seed with both outputs")
    measured = "—"
    if res["effect"] is not None:
        sp = f" ± {res['spread']:.1f}" if res.get("spread") is not None else ""
        what = "mean ± std of per-seed differences" if len(diffs) > 1 else "one seed's difference"
        measured = f"{res['effect']:+.1f}{sp} {metric}" + (f" − {metric_b}" if c is not None else "") \
            + f" ({what}, n = {len(diffs)})"
    return Finding(claim, source, compared, res, measured, _paper_text(paper_effect, "", paper_note), link,
                   {"diffs": dict(zip(seeds, diffs)), "metric": metric},
                   would_need=_paired_need(ctx, res, diffs, metric, paper_effect))


# ------------------------------------------------------------------------------ Table 4

JR_CLAIM = "Joint refinement raises AP and AP75"


def _refinement(ctx) -> list[Finding]:
    ds, models = ablation_models(ctx)
    base, off = models.get((True, "keypoints", True)), models.get((False, "keypoints", True))
    set4 = ctx.eval_set("crowdpose_ablation", ds, base, "table4") if ds else None
    off_mode = "refined"
    if ds and off and not ctx.inputs.seed_values(ds, off, set4, "refined", "oks", "AP") \
            and ctx.inputs.seed_values(ds, off, set4, "coarse", "oks", "AP"):
        off_mode = "coarse"          # a model without the refine branch may be stored as its coarse output
    out = []
    for m in ("AP", "AP75"):
        p = _paper_diff((4, "jr_on"), (4, "jr_off"), m)
        out.append(_unpaired_finding(
            ctx, JR_CLAIM, "Table 4", f"{m}: {base or 'baseline'} vs {off or 'no_refine'} "
            "(trained without the refine branch)", m, (ds, base, set4, "refined", "oks"),
            (ds, off, set4, off_mode, "oks"), p, "", "table4-jr_on"))
    for m in ("AP", "AP75"):
        p = _paper_diff((4, "jr_on"), (4, "jr_off"), m)
        out.append(_paired_finding(
            ctx, JR_CLAIM, "Table 4",
            f"{m} within one model: {base or 'baseline'} refined vs its own coarse output", m, (ds, base, set4, "refined", "oks"),
            (ds, base, set4, "coarse", "oks"), p, "with vs without JR; the paper has no coarse-output row",
            "table4-jr_on_coarse"))
    return out


# ------------------------------------------------------------------------------ Table 5

def _table5(ctx) -> list[Finding]:
    ds, models = ablation_models(ctx)
    base = models.get((True, "keypoints", True))
    box, nois = models.get((True, "box", True)), models.get((True, "keypoints", False))
    s5 = ctx.eval_set("crowdpose_ablation", ds, base, "table5") if ds else None
    arm = lambda v, nms="oks": (ds, v, s5, "refined", nms)  # noqa: E731
    out = []
    for m in ("AP_hard", "AP"):
        out.append(_unpaired_finding(
            ctx, "Keypoint-centroid assignment beats box centroid", "Table 5",
            f"{m}: {base or 'baseline'} vs {box or 'box_centroid'} (OKS-NMS, IS)", m, arm(base), arm(box),
            _paper_diff((5, "kpt_oks_is"), (5, "box_oks_is"), m), "" if m != "AP" else
            "Table 5 prints AP(E/M/H) only", "table5-kpt_oks_is"))
    for m in ("AP_hard", "AP"):
        out.append(_paired_finding(
            ctx, "OKS-NMS beats IoU-NMS", "Table 5", f"{m}: {base or 'baseline'} OKS-NMS vs IoU-NMS, same models",
            m, arm(base), arm(base, "iou"), _paper_diff((5, "kpt_oks_is"), (5, "kpt_iou_is"), m),
            "" if m != "AP" else "Table 5 prints AP(E/M/H) only; +1.4 AP(H) on average over its four models",
            "table5-kpt_iou_is"))
    ph = _paper_diff((5, "kpt_oks_is"), (5, "kpt_iou_is"), "AP_hard")
    pe = _paper_diff((5, "kpt_oks_is"), (5, "kpt_iou_is"), "AP_easy")
    out.append(_paired_finding(
        ctx, "OKS-NMS helps most on AP(H)", "Table 5",
        f"{base or 'baseline'}: OKS−IoU gain on AP(H) minus the gain on AP(E)", "AP_hard", arm(base),
        arm(base, "iou"), None if ph is None or pe is None else ph - pe, "", "table5-kpt_iou_is",
        metric_b="AP_easy", c=arm(base), d=arm(base, "iou")))
    for m in ("AP_hard", "AP"):
        out.append(_unpaired_finding(
            ctx, "Intermediate supervision helps", "Table 5", f"{m}: {base or 'baseline'} vs {nois or 'no_is'} "
            "(keypoint centroid, OKS-NMS)", m, arm(base), arm(nois),
            _paper_diff((5, "kpt_oks_is"), (5, "kpt_oks_nois"), m), "" if m != "AP" else
            "Table 5 prints AP(E/M/H) only", "table5-kpt_oks_nois"))
    return out


# ------------------------------------------------------------------------------ Figure 3

def _upper_bound(studies: dict) -> list[Finding]:
    out = []
    if not studies:
        return [Finding("OKS-NMS suppresses fewer true poses than IoU-NMS", "Figure 3", "GT upper bound",
                        _missing("results/<preset>/upper_bound/<set>.<protocol>.json"), "—",
                        "IoU-NMS below OKS-NMS at every threshold (figure only)", "figures")]
    for set_name, by_proto in sorted(studies.items()):
        for proto in sorted(by_proto, key=lambda p: (p != "authors", p)):
            study = by_proto[proto]
            rows = figure3_rows(study)
            res = figure3_verdict(study)
            total = next((r.get("num_detections_in") for r in study.get("rows", [])), None)
            at = {t: (o, i) for t, o, i in rows}
            thr = 0.5 if 0.5 in at else (sorted(at)[len(at) // 2] if at else None)
            measured = "—" if not rows else (
                f"IoU-NMS suppresses more at {sum(suppresses_fewer(o, i) for _, o, i in rows)} of {len(rows)} "
                "thresholds"
                + (f"; at {thr:g}: IoU {at[thr][1]} vs OKS {at[thr][0]}" + (f" of {total} poses" if total else "")
                   if thr is not None else "") + f" (exact counts, n = {res['n']} thresholds that differ)")
            out.append(Finding("OKS-NMS suppresses fewer true poses than IoU-NMS", "Figure 3",
                               f"GT upper bound on {set_name}, {proto} protocol", res, measured,
                               "IoU-NMS below OKS-NMS at every threshold (figure only)", f"figure3_{set_name}"))
    return out


# ------------------------------------------------------------------------------ Tables 2, 3 (TTA)

def _tta(ctx) -> list[Finding]:
    out = []
    ds3 = (ctx.experiment("table3") or {}).get("train") or ctx.dataset("crowdpose")
    v3 = ((ctx.experiment("table3") or {}).get("variants") or [None])[0] or ctx.base_variant(ds3)
    s3 = ctx.eval_set("crowdpose", ds3, v3, "table3") if ds3 else None
    out.append(_paired_finding(
        ctx, "TTA raises AP", "Table 3", f"{v3 or 'baseline'}: TTA vs single scale, same models", "AP",
        (ds3, v3, s3, "tta", "oks"), (ds3, v3, s3, "refined", "oks"), _paper_diff((3, "hrnet_w48"), (4, "jr_on"), "AP"),
        "Table 3 with TTA vs Table 4 without", "table3-hrnet_w48"))
    ds2 = (ctx.experiment("table2") or {}).get("train") or ctx.dataset("coco")
    for var in ((ctx.experiment("table2") or {}).get("variants") or ["hrnet_w48", "hrnet_w32"]):
        s2 = ctx.eval_set("coco", ds2, var, "table2") if ds2 else None
        p = _paper_diff((2, var), (1, var), "AP")
        out.append(_paired_finding(
            ctx, "TTA raises AP", "Table 2", f"{var}: TTA vs single scale, same models", "AP",
            (ds2, var, s2, "tta", "oks"), (ds2, var, s2, "refined", "oks"), p,
            "Table 2 vs Table 1" if p is not None else "", f"table2-{var}"))
    return out


# ------------------------------------------------------------------------------ Table 1 (speed, ranking)

def _timing(r: dict | None) -> dict | None:
    if r is None:
        return None
    raw = r.get("raw") or {}
    sp = raw.get("spread") if isinstance(raw.get("spread"), dict) else {}
    rep = raw.get("repeats") if isinstance(raw.get("repeats"), dict) else {}
    n = sp.get("n") or rep.get("network")
    return {"median_ms": r.get("network_ms"), "lo_ms": sp.get("p10_ms", sp.get("min_ms")),
            "hi_ms": sp.get("p90_ms", sp.get("max_ms")), "n": n, "short_side": r.get("short_side"),
            "device": r.get("device_kind"), "under_load": timed_under_load(r)}


def _bench_pick(rows: list[dict], method: str, backbone: str, device: str, short: int | None) -> dict | None:
    """PoseDet's row (``method`` 'posedet') or a peer's on ``backbone``: ``common.pick_bench``."""
    peer = None if method == "posedet" else method
    return pick_bench(rows, device_kind=device, peer=peer, backbone=backbone, short_side=short, need="network_ms")


def _gate(res: dict, dev: str, *timings, paper_device: str | None = "gpu") -> dict:
    return speed_gate(res, [dev], any(bool(t and t.get("under_load")) for t in timings), paper_device)


SPEED_NEED = ("no seed count applies: more timed calls do not narrow p10–p90; a quieter machine (or the "
              "paper's GPU) would")


def _timing_text(label_a, ta, label_b, tb, res) -> str:
    if res["effect"] is None:
        return "—"

    def one(label, t):
        sp = f" [{t['lo_ms']:.0f}–{t['hi_ms']:.0f}]" if t.get("lo_ms") and t.get("hi_ms") else ""
        return f"{label} {t['median_ms']:.0f} ms{sp}"
    n = "/".join("?" if x is None else str(x) for x in (ta.get("n"), tb.get("n")))
    return f"{res['effect']:.2f}× ({one(label_a, ta)} vs {one(label_b, tb)}; median [p10–p90] of n = {n} " \
           f"timed calls, {ta.get('device', '').upper()})"


def _speed(ctx) -> list[Finding]:
    rows, sweep, _ = bench_rows(ctx.inputs)
    devices = sorted({r["device_kind"] for r in rows}) or ["gpu"]
    out = []
    for dev in devices:
        for bb, paper_name, short in (("hrnet_w48", "HRNet-W48", 640), ("hrnet_w32", "HRNet-W32", 512)):
            a, b = _bench_pick(rows, "posedet", bb, dev, short), _bench_pick(rows, "higherhrnet", bb, dev, short)
            ta, tb = _timing(a), _timing(b)
            pa, pb = paper_row(1, bb), paper_row(1, "higher_hrnet")
            paper = (pa["FPS"] / pb["FPS"]) if bb == "hrnet_w48" and pa and pb and pb["FPS"] else None
            res = _gate(compare_timing(ta, tb, 1, f"results/{ctx.preset_name}/bench/table.json rows PoseDet and "
                                                  f"HigherHRNet-style {bb} ({dev})"), dev, ta, tb)
            out.append(Finding("PoseDet is faster than bottom-up HigherHRNet on the same backbone", "Table 1",
                               f"network time, {paper_name}-sized backbone, {dev.upper()}", res,
                               _timing_text("PoseDet", ta, "HigherHRNet-style", tb, res),
                               f"{paper:.1f}× (10 vs 4 FPS at W48)" if paper else "not printed for W32",
                               f"table1-{bb}", would_need=_speed_need(res)))
    out += _sweep_findings(ctx, sweep)
    return out


def _speed_need(res: dict) -> str:
    if res["verdict"] != NOT_RESOLVED or res["effect"] is None:
        return ""
    if res["reason"].startswith("timed under load"):
        return "time it again on an idle machine (no other work on the CPU cores)"
    if "no spread" in res["reason"]:
        return "record the p10–p90 of ≥ 2 timed calls per row (the bench's spread)"
    return SPEED_NEED


def _sweep_findings(ctx, sweep: list[dict]) -> list[Finding]:
    groups: dict = {}
    for r in sweep:
        if norm(r["name"]) == "posedet" and r.get("people") is not None and r.get("network_ms"):
            groups.setdefault((r.get("backbone"), r["device_kind"]), []).append(r)
    if not groups:
        return [Finding("PoseDet's time does not grow with the number of people", "Sec. 4.3", "bench sweep",
                        _missing(f"results/{ctx.preset_name}/bench/table.json: sweep rows"), "—",
                        "same FPS on CrowdPose as on COCO (text)", "figure_people_sweep")]
    out = []
    for (bb, dev), rs in sorted(groups.items(), key=str):
        rs = sorted(rs, key=lambda r: r["people"])
        few, many = _timing(rs[0]), _timing(rs[-1])
        res = _gate(compare_no_growth(few, many), dev, few, many, paper_device=None)
        measured = "—" if res["effect"] is None else (
            f"×{res['effect']:.2f} from {rs[0]['people']} to {rs[-1]['people']} people ({few['median_ms']:.0f} → "
            f"{many['median_ms']:.0f} ms median; n = {few.get('n') or '?'}/{many.get('n') or '?'} timed calls, "
            f"{dev.upper()})")
        out.append(Finding("PoseDet's time does not grow with the number of people", "Sec. 4.3",
                           f"bench sweep, PoseDet {bb}, network time; tolerance +{NO_GROWTH_TOLERANCE:.0%}",
                           res, measured, "same FPS on CrowdPose as on COCO (text)", "figure_people_sweep",
                           would_need=_speed_need(res)))
    return out


def _trained(ctx, ds, var) -> tuple[str | None, object]:
    """(backbone trained for ``var``, its training steps): the resolved config's backbone, else the
    preset's ``backbones:`` mapping; steps from train/summary.json, else the preset's
    ``train.iterations`` for it, else the resolved config's."""
    cfg = (ctx.inputs.model_config(ds, var) if ds else None) or {}
    bb = (cfg.get("model") or {}).get("backbone") or preset_backbone(ctx.preset, var)
    runs = ctx.inputs.seeds(ds, var) if ds else []
    summ = ctx.inputs.summary(runs[0]) if runs else None
    steps = summ.get("steps") if isinstance(summ, dict) else None
    if steps is None:
        steps = preset_steps(ctx.preset, var)
    if steps is None:
        steps = (cfg.get("train") or {}).get("iterations")
    return bb, steps


def _ranking(ctx) -> list[Finding]:
    ds = ctx.dataset("coco")
    set1 = ctx.eval_set("coco", ds, "dla34", "table1") if ds else None
    out = []
    # one reason for the whole ranking: any stand-in or unequal step count among its three backbones
    why = ranking_gate([(v, *_trained(ctx, ds, v)) for v in ("hrnet_w48", "hrnet_w32", "dla34")])
    for hi, lo in (("hrnet_w48", "hrnet_w32"), ("hrnet_w32", "dla34")):
        ph, pl = paper_row(1, hi), paper_row(1, lo)
        f = _unpaired_finding(
            ctx, "Backbone ranking by AP: HRNet-W48 > HRNet-W32 > DLA-34", "Table 1",
            f"{hi} vs {lo} (their stand-ins where the preset maps them)", "AP",
            (ds, hi, set1, "refined", "oks"), (ds, lo, set1, "refined", "oks"),
            ph["AP"] - pl["AP"] if ph and pl else None, "", f"table1-{hi}")
        if why:
            f.result = {**f.result, "verdict": NOT_TESTED, "reason": why}
            f.would_need = ""
        f.rule = "chain"
        out.append(f)
    rows, _, _ = bench_rows(ctx.inputs)
    for dev in sorted({r["device_kind"] for r in rows}) or ["gpu"]:
        for fast, slow in (("dla34", "hrnet_w32"), ("hrnet_w32", "hrnet_w48")):
            pf, ps = paper_row(1, fast), paper_row(1, slow)
            ta = _timing(_bench_pick(rows, "posedet", fast, dev, pf["input_size"] if pf else None))
            tb = _timing(_bench_pick(rows, "posedet", slow, dev, ps["input_size"] if ps else None))
            res = _gate(compare_timing(ta, tb, 1, f"results/{ctx.preset_name}/bench/table.json rows PoseDet "
                                                  f"{fast}, {slow} ({dev})"), dev, ta, tb)
            paper = pf["FPS"] / ps["FPS"] if pf and ps and ps["FPS"] else None
            out.append(Finding("Backbone ranking by speed: DLA-34 > HRNet-W32 > HRNet-W48", "Table 1",
                               f"PoseDet {fast} vs {slow}, network time at the paper's input sizes, {dev.upper()}",
                               res, _timing_text(fast, ta, slow, tb, res),
                               f"{paper:.1f}× ({pf['FPS']:g} vs {ps['FPS']:g} FPS)" if paper else "not printed",
                               f"table1-{fast}", would_need=_speed_need(res), rule="chain"))
    return out


# ------------------------------------------------------------------------------ peers

def _budget(ctx, ds, var) -> str:
    runs = ctx.inputs.seeds(ds, var) if ds and var else []
    s = ctx.inputs.summary(runs[0]) if runs else None
    if not isinstance(s, dict):
        return ""
    wall = s.get("wall_s")
    imgs = s.get("images_seen")
    if imgs is None and isinstance(s.get("steps"), (int, float)):
        bs = ((s.get("config") or {}).get("train") or {}).get("batch_size")
        imgs = s["steps"] * bs if isinstance(bs, (int, float)) else None
    parts = ([f"{wall / 60:.0f} min"] if isinstance(wall, (int, float)) else []) + \
        ([f"{imgs:,.0f} images"] if isinstance(imgs, (int, float)) else [])
    return ", ".join(parts)


def _peer_goal(label: str) -> str:
    return f"no such row in the paper; the harness's goal: PoseDet/{label} AP ratio ≥ {PEER_RATIO_GOAL:g}"


def _peers(ctx) -> list[Finding]:
    out = []
    ds4, models = ablation_models(ctx)
    base = models.get((True, "keypoints", True))
    ds1 = ctx.dataset("coco")
    t1_vars = [v for v in ((ctx.experiment("table1") or {}).get("variants") or ["dla34"])]
    pd1 = "dla34" if "dla34" in t1_vars else (t1_vars[0] if t1_vars else None)
    for table, exp, ds, ours, kind in (("Table 4", "table4", ds4, base, "crowdpose_ablation"),
                                       ("Table 1", "table1", ds1, pd1, "coco")):
        peers = ctx.peers(exp, ds)
        set_slug = ctx.eval_set(kind, ds, ours, exp) if ds else None
        if not peers:             # none planned, none trained: say so without listing files as missing
            label = PEER_LABELS["yolo11n_pose"]
            out.append(Finding(f"PoseDet beats a peer trained on the same data and budget ({label})", table,
                               f"{ours or 'PoseDet'} vs a peer ({'CrowdPose' if exp == 'table4' else 'COCO'} layout)",
                               _missing(f"no peer trained (the preset's experiments.{exp} lists no peers:)"), "—",
                               _peer_goal(label)))
            continue
        for peer in peers:
            label = PEER_LABELS.get(peer, peer)
            f = _unpaired_finding(
                ctx, f"PoseDet beats a peer trained on the same data and budget ({label})", table,
                f"{ours or 'PoseDet'} vs {peer} ({'CrowdPose' if exp == 'table4' else 'COCO'} layout)", "AP",
                (ds, ours, set_slug, "refined", "oks"), (ds, peer, set_slug, "refined", "oks"), None,
                _peer_goal(label), f"{exp}-{peer}")
            ta, tb = f.extra["treat"], f.extra["ref"]
            if ta and tb:
                ma, mb = statistics.fmean(ta.values()), statistics.fmean(tb.values())
                ratio = ma / mb if mb > 0 else math.inf
                f.extra["ratio"] = ratio
                f.measured += f"; AP ratio {ratio:.2f} (goal ≥ {PEER_RATIO_GOAL:g}: " \
                              f"{'reached' if ratio >= PEER_RATIO_GOAL else 'not reached'} by the means)"
                budgets = [b for b in (_budget(ctx, ds, ours), _budget(ctx, ds, peer)) if b]
                if len(budgets) == 2:
                    f.measured += f"; budget {budgets[0]} vs {budgets[1]}"
            out.append(f)
    return out


def collect_findings(ctx, studies: dict) -> list[Finding]:
    """Every claim of the paper the harness checks, in the paper's order of importance here."""
    steps = (("refinement", _refinement), ("table5", _table5), ("upper bound", lambda c: _upper_bound(studies)),
             ("tta", _tta), ("speed", _speed), ("ranking", _ranking), ("peers", _peers))
    out: list[Finding] = []
    for name, step in steps:
        try:
            out += step(ctx)
        except Exception as e:     # one unreadable input must not take the report down: say so
            ctx.inputs.need(f"findings step '{name}' failed: {type(e).__name__}: {e}", "posedet.report.findings")
            out.append(Finding(f"({name})", "—", "—", _missing(f"the step failed: {type(e).__name__}: {e}")))
    return out


# ============================================================================== rendering

VERDICTS = (HOLDS, CONTRADICTED, NOT_RESOLVED, NOT_TESTED)


def counts(items) -> dict[str, int]:
    """{verdict: how many} of claims (or of cases)."""
    c = {v: 0 for v in VERDICTS}
    for f in items:
        c[f.verdict] = c.get(f.verdict, 0) + 1
    return c


def count_line(claims: list[Claim]) -> str:
    c = counts(claims)
    return (f"{len(claims)} claims: {c[HOLDS]} hold, {c[CONTRADICTED]} contradicted, {c[NOT_RESOLVED]} not "
            f"resolved, {c[NOT_TESTED]} not tested here")


def _verdict_text(x) -> str:
    """A case: 'holds', or the verdict with its reason ('not resolved: …', 'not tested here: …');
    a claim: 'holds (on 3 of 3 cases)'."""
    if x.verdict in (HOLDS, CONTRADICTED):
        return x.verdict if isinstance(x, Finding) else f"{x.verdict} ({x.result['reason']})"
    return f"{x.verdict}: {x.result['reason']}"


RULE_NOTE = ("Verdicts are computed from the results files by `posedet/report/findings.py` (rules: docs/report.md, "
             "\"Verdicts\"): **holds** or **contradicted** only when the difference is resolved beyond its spread "
             "(per-seed values of each model; per-seed differences when both arms are outputs of the same models; "
             "p10–p90 of the timed calls for speed); **not resolved** when it is within the spread, n < 2, timed "
             "under load, or an input is missing, with what would resolve it; **not tested here** when the "
             "preset's design cannot test the claim (stand-in backbones, CPU timings of the paper's GPU figures). "
             "One row per claim: its first case is the headline; a claim measured in several cases holds when more "
             "than half of its testable cases hold and none is contradicted (a ranking: when every link holds). "
             "AP effects are ×100.")


def _case_line(f: Finding) -> str:
    text = f"{f.compared}: {f.measured or '—'}; paper: {f.paper or '—'} — **{_verdict_text(f)}**"
    if f.would_need:
        text += f". What would resolve it: {f.would_need}"
    return text


def render_markdown(findings: list[Finding], preset_name: str, index: str = "index.html") -> str:
    """summary.md: one list item per claim (verdict, headline number, the paper's number), its cases
    indented beneath it."""
    claims = collect_claims(findings)
    lines = [f"# Does the paper hold here? Preset `{preset_name}`", "", RULE_NOTE, "",
             f"**{count_line(claims)}.**", ""]
    for c in claims:
        h = c.headline
        see = f" [{h.source}]({index}#{h.link})" if h.link else ""
        line = (f"- **{c.claim}** ({c.source}): **{_verdict_text(c)}**. Here: {h.measured or '—'}; "
                f"paper: {h.paper or '—'}.{see}")
        if c.verdict == NOT_RESOLVED and c.would_need:
            line += f" What would resolve it: {c.would_need}."
        lines.append(md_escape(line))
        if len(c.cases) > 1:
            lines += ["  - " + md_escape(_case_line(f)) for f in c.cases]
    return "\n".join(lines) + "\n"


def _inline(s: str) -> str:
    s = html.escape(s)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


def _cls(verdict: str) -> str:
    return {HOLDS: "holds", CONTRADICTED: "contradicted", NOT_TESTED: "not-tested"}.get(verdict, "not-resolved")


def render_html(findings: list[Finding]) -> str:
    """The findings section of index.html: one row per claim; its cases in a <details> beneath."""
    claims = collect_claims(findings)
    e = html.escape
    h = ["<section id='findings'><h2>Findings: does the paper hold here?</h2>",
         f"<p class='verdict-counts'><b>{e(count_line(claims))}</b> (also in <a href='summary.md'>summary.md</a>)."
         "</p>",
         f"<p class='rule'>{_inline(RULE_NOTE)}</p>",
         "<div class='scroll'><table class='findings'><thead><tr><th>Claim (paper)</th><th>Measured here "
         "(headline)</th><th>Paper</th><th>Verdict</th><th>See</th></tr></thead><tbody>"]
    for c in claims:
        f = c.headline
        link = f"<a href='#{e(f.link)}'>{e(f.source)}</a>" if f.link else ""
        verdict = e(_verdict_text(c))
        if c.verdict == NOT_RESOLVED and c.would_need:
            verdict += f"<br><span class='would-need'>What would resolve it: {e(c.would_need)}</span>"
        cases = ""
        if len(c.cases) > 1:
            items = "".join(
                f"<li class='case verdict-{_cls(x.verdict)}'>{e(x.compared)}: {e(x.measured or '—')}; paper: "
                f"{e(x.paper or '—')} — <b>{e(_verdict_text(x))}</b>"
                + (f". What would resolve it: {e(x.would_need)}" if x.would_need else "") + "</li>"
                for x in c.cases)
            cases = f"<details><summary>{len(c.cases)} cases</summary><ul class='cases'>{items}</ul></details>"
        h.append(f"<tr class='verdict-{_cls(c.verdict)}'><td>{e(c.claim)} ({e(c.source)}){cases}</td>"
                 f"<td>{e(f.compared)}: {e(f.measured or '—')}</td><td>{e(f.paper or '—')}</td>"
                 f"<td class='verdict'>{verdict}</td><td>{link}</td></tr>")
    h.append("</tbody></table></div></section>")
    return "\n".join(h)
