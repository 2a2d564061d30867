# Train → predict (refined and coarse-only) → evaluate, for every model the preset names.


wildcard_constraints:
    mode="refined|coarse",
    set="[^/]+",
    model="[^/]+",


rule train:
    input:
        ann=lambda wc: P.annotation_file(PRESET, model_spec(wc.model)["train"], RES),
        variant=lambda wc: model_variant(wc.model),
    output:
        ckpt=f"{RES}/models/{{model}}/final.pt",
    params:
        posedet=POSEDET,
        images=lambda wc: set_images(model_spec(wc.model)["train"]),
        overrides=lambda wc: model_overrides(wc.model),
        out=lambda wc, output: str(Path(output.ckpt).parent),
    threads: 64  # every core --cores allows (Snakemake caps it); sets torch's thread count
    conda:
        ENV
    log:
        f"{RES}/logs/train/{{model}}.log",
    shell:
        # --resume: an interrupted run continues from its last checkpoint instead of restarting
        "{params.posedet} train --config {input.variant} {params.overrides} --train-ann {input.ann} "
        "--train-images {params.images} --out {params.out} --resume > {log} 2>&1"


rule predict:
    input:
        ckpt=f"{RES}/models/{{model}}/final.pt",
        ann=lambda wc: P.annotation_file(PRESET, P.unslug(PRESET, wc.set), RES),
        variant=lambda wc: model_variant(wc.model),
    output:
        f"{RES}/predictions/{{model}}/{{set}}.{{mode}}.json",
    params:
        posedet=POSEDET,
        images=lambda wc: set_images(P.unslug(PRESET, wc.set)),
        overrides=lambda wc: model_overrides(wc.model),
        coarse=lambda wc: "--coarse-only" if wc.mode == "coarse" else "",
    threads: 64  # every core --cores allows (Snakemake caps it); sets torch's thread count
    conda:
        ENV
    log:
        f"{RES}/logs/predict/{{model}}-{{set}}.{{mode}}.log",
    shell:
        "{params.posedet} predict --checkpoint {input.ckpt} --config {input.variant} {params.overrides} "
        "--ann {input.ann} --images {params.images} {params.coarse} --out {output} > {log} 2>&1"


rule evaluate:
    input:
        gt=lambda wc: P.annotation_file(PRESET, P.unslug(PRESET, wc.set), RES),
        results=f"{RES}/predictions/{{model}}/{{set}}.{{mode}}.json",
    output:
        f"{RES}/metrics/{{model}}/{{set}}.{{mode}}.json",
    params:
        posedet=POSEDET,
    conda:
        ENV
    log:
        f"{RES}/logs/evaluate/{{model}}-{{set}}.{{mode}}.log",
    shell:
        "{params.posedet} evaluate --gt {input.gt} --results {input.results} --metric auto "
        "--out {output} > {log} 2>&1"


rule train_eval:
    input:
        model_eval_targets("metrics"),
