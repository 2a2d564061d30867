# The report: Tables 1-5 (md, tex, csv), Figures 3-5 and the rest, reports/<preset>/index.html.
# It reads only files upstream rules wrote (docs/results_layout.md); `make reproduce` adds
# `snakemake --report reports/<preset>/snakemake_report.html` (rule code, runtimes, the graph).

from posedet.report.collect import synthetic_data_files

REPORT_TABLES = [f"{REP}/table{i}.{ext}" for i in range(1, 6) for ext in ("md", "tex", "csv")]
ABLATION = ["table4", "table5", "figure5"]


rule report:
    input:
        report_inputs(),  # with the peers' metrics and summaries (common.smk)
        synthetic_data_files(PRESET, RES),  # "Data sets": every synthetic split's stats.json, the contact sheets
    output:
        html=f"{REP}/index.html",
        summary=f"{REP}/summary.md",
        tables=REPORT_TABLES,
    params:
        posedet=POSEDET,
        preset=PRESET_NAME,
        results=lambda wc: RES,
        out=lambda wc, output: str(Path(output.html).parent),
    conda:
        ENV
    log:
        f"{RES}/logs/report/index.log",
    shell:
        "{params.posedet} report --preset {params.preset} --results {params.results} --out {params.out} "
        "> {log} 2>&1"


rule report_ablation:
    # `ablation_crowdpose` alone: the same report over the results it has (Tables 4, 5, Figure 5)
    input:
        report_inputs(ABLATION),
    output:
        html=f"{REP}/ablation_crowdpose/index.html",
        summary=f"{REP}/ablation_crowdpose/summary.md",
    params:
        posedet=POSEDET,
        preset=PRESET_NAME,
        results=lambda wc: RES,
        out=lambda wc, output: str(Path(output.html).parent),
    conda:
        ENV
    log:
        f"{RES}/logs/report/ablation_crowdpose.log",
    shell:
        "{params.posedet} report --preset {params.preset} --results {params.results} --out {params.out} "
        "> {log} 2>&1"


rule ablation_crowdpose:
    input:
        eval_files("metrics", ABLATION),
        f"{REP}/ablation_crowdpose/index.html",


rule reproduce_tables:
    input:
        rules.report.output,
        rules.nms_upper_bound.input,
        rules.fps.input,
        rules.train_eval.input,
