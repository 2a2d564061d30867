# Peers trained beside PoseDet (an experiment's `peers:` list, posedet/presets.py): YOLO11n-pose
# built from its YAML (random init, Ultralytics offline), trained on the experiment's training
# set under the PoseDet baseline's images budget (iterations x batch size, times the budget
# knob) at the recipe's input size, predicted on the experiment's eval sets and scored by the
# `evaluate` rule (rules/model.smk) like a PoseDet variant:
#   results/<preset>/<dataset>/<peer>/seed<k>/train/{summary.json,weights/last.pt,data/}
#   results/<preset>/<dataset>/<peer>/seed<k>/predictions/<set>.refined.oks.json
#   results/<preset>/<dataset>/<peer>/seed<k>/metrics/<set>.refined.oks.json
# (`refined.oks`: the peer's own output and NMS, filed under the single-scale row's names.)
# Both jobs run on the workflow's device (--device DEVICE, as the PoseDet jobs; rules/model.smk).

PEER_RUN = f"{RES}/{{dataset}}/{{peer}}/seed{{seed}}"


rule peer_train:
    input:
        ann=train_ann,
        val=peer_val_ann,
    output:
        summary=f"{PEER_RUN}/train/summary.json",
        weights=f"{PEER_RUN}/train/weights/last.pt",
    params:
        posedet=POSEDET,
        images=train_images,
        val_images=peer_val_images,
        model=lambda wc: P.PEERS[wc.peer],
        budget=peer_budget_args,
        out=lambda wc, output: str(Path(output.summary).parent),
        device=DEVICE,
    wildcard_constraints:
        peer=alternatives(P.PEERS),
    threads: TRAIN_THREADS
    conda:
        ENV
    log:
        f"{RES}/logs/peer_train/{{dataset}}-{{peer}}-seed{{seed}}.log",
    shell:
        "{params.posedet} peer-train --model {params.model} --train-ann {input.ann} --images {params.images} "
        "--val-ann {input.val} --val-images {params.val_images} {params.budget} --seed {wildcards.seed} "
        "--threads {threads} --device {params.device} --out {params.out} > {log} 2>&1"


rule peer_predict:
    input:
        ckpt=f"{PEER_RUN}/train/weights/last.pt",
        ann=set_ann,
    output:
        f"{PEER_RUN}/predictions/{{set}}.{P.PEER_MODE}.{P.PEER_NMS}.json",
    params:
        posedet=POSEDET,
        images=lambda wc: set_images(P.unslug(PRESET, wc.set)),
        device=DEVICE,
    wildcard_constraints:
        peer=alternatives(P.PEERS),
    threads: TRAIN_THREADS
    conda:
        ENV
    log:
        f"{RES}/logs/peer_predict/{{dataset}}-{{peer}}-seed{{seed}}-{{set}}.log",
    shell:
        "{params.posedet} peer-predict --checkpoint {input.ckpt} --ann {input.ann} --images {params.images} "
        "--threads {threads} --device {params.device} --out {output} > {log} 2>&1"
