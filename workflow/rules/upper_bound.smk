# The ground-truth upper-bound NMS study (the paper's Figure 3), on every set the preset names,
# under each OKS protocol: authors (the script that made the paper's figure; the default) and eval
# (the evaluation OKS).

UB_SETS = [P.slug(s) for s in PRESET["upper_bound"]["sets"]]
UB_PROTOCOLS = list(PRESET["upper_bound"].get("protocols", ["authors"]))


rule upper_bound:
    input:
        ann=set_ann,
    output:
        metrics=f"{RES}/upper_bound/{{set}}.{{protocol}}.json",
        figure=f"{REP}/figure3_upper_bound_{{set}}.{{protocol}}.png",
    params:
        posedet=POSEDET,
        thresholds=" ".join(str(t) for t in PRESET["upper_bound"]["thresholds"]),
        name=lambda wc: P.unslug(PRESET, wc.set),
        title=lambda wc: f"{set_title(P.unslug(PRESET, wc.set))}, {wc.protocol} OKS",
        evaluator=PRESET["upper_bound"].get("evaluator", "official"),
    conda:
        ENV
    log:
        f"{RES}/logs/upper_bound/{{set}}.{{protocol}}.log",
    shell:
        "{params.posedet} upper-bound --gt {input.ann} --thresholds {params.thresholds} "
        "--protocol {wildcards.protocol} --name {params.name} --evaluator {params.evaluator} "
        "--title {params.title:q} --out {output.metrics} --figure {output.figure} > {log} 2>&1"


rule nms_upper_bound:
    input:
        upper_bound_files(),
        expand(f"{REP}/figure3_upper_bound_{{set}}.{{protocol}}.png", set=UB_SETS, protocol=UB_PROTOCOLS),
        expand(f"{RES}/stats/{{set}}.json", set=UB_SETS),
