# Data sets: the synthetic generator and the statistics that compare sets with real CrowdPose.

rule synth_dataset:
    input:
        pose_source=POSE_SOURCE,
    output:
        ann=f"{RES}/data/{{name}}/{{split}}/annotations.json",
        images=directory(f"{RES}/data/{{name}}/{{split}}/images"),
        sheet=f"{RES}/data/{{name}}/{{split}}/contact_sheet.png",
        stats=f"{RES}/data/{{name}}/{{split}}/stats.json",
    params:
        posedet=POSEDET,
        p=synth_params,
        out=lambda wc, output: str(Path(output.ann).parent),
    conda:
        ENV
    log:
        f"{RES}/logs/synth/{{name}}-{{split}}.log",
    shell:
        "{params.posedet} synth --layout {params.p[layout]} --num-images {params.p[num]} "
        "--size {params.p[size]} --density {params.p[density]} --seed {params.p[seed]} "
        "--clutter {params.p[clutter]} --max-people {params.p[max_people]} "
        "--person-scale {params.p[person_scale]} --texture {params.p[texture]} "
        "--pose-source {input.pose_source} --out {params.out} > {log} 2>&1"


rule dataset_stats:
    input:
        ann=lambda wc: P.annotation_file(PRESET, P.unslug(PRESET, wc.set), RES),
    output:
        f"{RES}/stats/{{set}}.json",
    params:
        posedet=POSEDET,
    conda:
        ENV
    log:
        f"{RES}/logs/stats/{{set}}.log",
    shell:
        "{params.posedet} synth --stats-only {input.ann} --out {output} > {log} 2>&1"
