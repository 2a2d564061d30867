# The report: Tables 1-5 (md, tex, csv), Figures 3-5 and the rest, reports/<preset>/index.html.
# It reads only the files the run's plan.json names (rule `plan`; docs/results_layout.md);
# `make reproduce` adds `snakemake --report reports/<preset>/snakemake_report.html` (rule code,
# runtimes, the graph).

REPORT_TABLES = [f"{REP}/table{i}.{ext}" for i in range(1, 6) for ext in ("md", "tex", "csv")]
ABLATION = ["table4", "table5", "figure5"]
PLAN_FILE = f"{RES}/plan.json"


rule plan:
    # The run's plan (posedet/plan.py; docs/results_layout.md): every file this run makes that the
    # report reads. The plan's JSON is the param, so a changed --config, preset or recipe reruns it
    # (and the report after it).
    output:
        PLAN_FILE,
    params:
        plan=lambda wc: PL.plan_json(PLAN),  # a function: no wildcard expansion of its braces
    log:
        f"{RES}/logs/plan.log",
    run:
        PL.write_plan_json(output[0], params.plan, log=log[0])


rule report:
    input:
        report_inputs(),  # with the peers' metrics and summaries (common.smk)
        PLAN.synthetic_data_files(),  # "Data sets": every synthetic split's stats.json, the contact sheets
        plan=PLAN_FILE,
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
        "--plan {input.plan} > {log} 2>&1"


rule report_ablation:
    # `ablation_crowdpose` alone: the same report over the results it has (Tables 4, 5, Figure 5)
    input:
        report_inputs(ABLATION),
        plan=PLAN_FILE,
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
        "--plan {input.plan} > {log} 2>&1"


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
