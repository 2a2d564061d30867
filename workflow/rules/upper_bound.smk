# The ground-truth upper-bound NMS study (the paper's Figure 3), on every set the preset names.

UB_SETS = [P.slug(s) for s in PRESET["upper_bound"]["sets"]]


rule upper_bound:
    input:
        ann=lambda wc: P.annotation_file(PRESET, P.unslug(PRESET, wc.set), RES),
    output:
        metrics=f"{RES}/upper_bound/{{set}}.json",
        figure=f"{REP}/figure3_upper_bound_{{set}}.png",
    params:
        posedet=POSEDET,
        thresholds=" ".join(str(t) for t in PRESET["upper_bound"]["thresholds"]),
        name=lambda wc: P.unslug(PRESET, wc.set),
        title=lambda wc: set_title(P.unslug(PRESET, wc.set)),
        evaluator=PRESET["upper_bound"].get("evaluator", "official"),
    conda:
        ENV
    log:
        f"{RES}/logs/upper_bound/{{set}}.log",
    shell:
        "{params.posedet} upper-bound --gt {input.ann} --thresholds {params.thresholds} "
        "--name {params.name} --evaluator {params.evaluator} --title {params.title:q} --out {output.metrics} --figure {output.figure} > {log} 2>&1"


rule nms_upper_bound:
    input:
        expand(f"{RES}/upper_bound/{{set}}.json", set=UB_SETS),
        expand(f"{REP}/figure3_upper_bound_{{set}}.png", set=UB_SETS),
        expand(f"{RES}/stats/{{set}}.json", set=UB_SETS),
