# Train -> predict (refined | coarse | tta, OKS- or IoU-NMS) -> evaluate, for every model the
# preset's experiments name: results/<preset>/<dataset>/<variant>/seed<k>/ (docs/results_layout.md).
#
# Interrupted jobs: Snakemake marks a killed job's outputs incomplete (and deletes them, or reruns
# them under --rerun-incomplete, which both profiles set); posedet writes every file atomically
# (temporary file + rename), so a killed job never leaves a truncated file that looks finished.
# Training keeps train/last.pt (not a declared output, so Snakemake leaves it) and the rerun
# continues from it (--resume).
#
# --config budget=K: every train job gets --set train.budget=K (steps, warm-up, lr milestones,
# checkpoint and snapshot cadence scaled by K; posedet/config.py train_schedule), under RES =
# results/<preset>/budget<K>/ (budget 1: results/<preset>/, commands unchanged).
#
# Device: every train, predict and curve job gets --device DEVICE (the preset's `device:`, or
# --config device=...; auto = cuda where the job's machine has one; posedet/devices.py). A model
# with model.pretrained true trains from the staged ImageNet weights (rules/weights.smk):
# --set model.pretrained_file=..., under HF_HUB_OFFLINE=1.

MODEL = f"{RES}/{{dataset}}/{{variant}}/seed{{seed}}"


rule train:
    input:
        ann=train_ann,
        recipe=RECIPE,
        pretrained=train_pretrained,
        # ancient: staging the weights again never retrains a finished model
        weights=lambda wc: (
            [ancient(f) for f in train_weights(wc)] + ([ancient(WEIGHTS_RECORD)] if train_weights(wc) else [])
        ),
    output:
        ckpt=f"{MODEL}/train/final.pt",
        summary=f"{MODEL}/train/summary.json",
    params:
        launcher=train_launcher,
        env=lambda wc: "HF_HUB_OFFLINE=1 " if train_weights(wc) else "",
        images=train_images,
        overrides=train_overrides,
        device=DEVICE,
        out=lambda wc, output: str(Path(output.ckpt).parent),
    threads: TRAIN_THREADS  # sets OMP_NUM_THREADS, hence torch's thread count
    conda:
        ENV
    log:
        f"{RES}/logs/train/{{dataset}}-{{variant}}-seed{{seed}}.log",
    shell:
        # the log gets the JSONL lines' summary and the tqdm progress bar (stderr)
        "{params.env}{params.launcher} train --config {input.recipe} {params.overrides} --train-ann {input.ann} "
        "--train-images {params.images} --out {params.out} --resume --device {params.device} > {log} 2>&1"


rule predict:
    input:
        ckpt=f"{MODEL}/train/final.pt",
        ann=set_ann,
        recipe=RECIPE,
    output:
        f"{MODEL}/predictions/{{set}}.{{mode}}.{{nms}}.json",
    params:
        posedet=POSEDET,
        images=lambda wc: set_images(P.unslug(PRESET, wc.set)),
        overrides=predict_overrides,
        flags=predict_flags,
        device=DEVICE,
    threads: TRAIN_THREADS
    conda:
        ENV
    log:
        f"{RES}/logs/predict/{{dataset}}-{{variant}}-seed{{seed}}-{{set}}.{{mode}}.{{nms}}.log",
    shell:
        "{params.posedet} predict --checkpoint {input.ckpt} --config {input.recipe} {params.overrides} "
        "--ann {input.ann} --images {params.images} {params.flags} --device {params.device} --out {output} "
        "> {log} 2>&1"


rule evaluate:
    input:
        gt=set_ann,
        results=f"{MODEL}/predictions/{{set}}.{{mode}}.{{nms}}.json",
    output:
        f"{MODEL}/metrics/{{set}}.{{mode}}.{{nms}}.json",
    wildcard_constraints:
        variant=alternatives([*VARIANTS, *P.PEERS]),  # PoseDet variants and the peers (rules/peers.smk)
    params:
        posedet=POSEDET,
        evaluator=PRESET.get("evaluator", "official"),
    conda:
        ENV
    log:
        f"{RES}/logs/evaluate/{{dataset}}-{{variant}}-seed{{seed}}-{{set}}.{{mode}}.{{nms}}.log",
    shell:
        "{params.posedet} evaluate --gt {input.gt} --results {input.results} --metric auto "
        "--evaluator {params.evaluator} --out {output} > {log} 2>&1"


rule curve:
    # Learning curve of one run (the preset's learning_curve: block): every snapshot the run kept
    # under train/snapshots/ scored on a held-out set.
    input:
        ckpt=f"{MODEL}/train/final.pt",
        ann=lambda wc: P.annotation_file(PRESET, CURVE["eval"], RES),
    output:
        f"{MODEL}/curve.json",
    params:
        posedet=POSEDET,
        run_dir=lambda wc, input: str(Path(input.ckpt).parent),
        images=lambda wc: set_images(CURVE["eval"]),
        evaluator=PRESET.get("evaluator", "official"),
        device=DEVICE,
    threads: TRAIN_THREADS
    conda:
        ENV
    log:
        f"{RES}/logs/curve/{{dataset}}-{{variant}}-seed{{seed}}.log",
    shell:
        "{params.posedet} curve --run-dir {params.run_dir} --ann {input.ann} --images {params.images} "
        "--evaluator {params.evaluator} --device {params.device} --out {output} > {log} 2>&1"


rule train_eval:
    input:
        train_summaries(),
        eval_files("metrics"),
        curve_files(),
