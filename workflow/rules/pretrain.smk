# The harness-made pretrained start (the preset's `pretrain:` block): each listed backbone is
# pre-trained once on person segmentation over a separate synthetic split (`posedet pretrain`);
# every variant with that backbone starts from the same file (its sha256 is in manifest.json).
# --config budget=K runs K x its iterations (--budget K).

rule pretrain:
    input:
        pose_source=POSE_SOURCE,
    output:
        backbone=f"{RES}/pretrain/{{backbone}}/backbone.pt",
        manifest=f"{RES}/pretrain/{{backbone}}/manifest.json",
    params:
        posedet=POSEDET,
        args=pretrain_cli_args,
        out=lambda wc, output: str(Path(output.backbone).parent),
    threads: TRAIN_THREADS
    conda:
        ENV
    log:
        f"{RES}/logs/pretrain/{{backbone}}.log",
    shell:
        "{params.posedet} pretrain --backbone {wildcards.backbone} {params.args} "
        "--pose-source {input.pose_source} --out {params.out} > {log} 2>&1"
