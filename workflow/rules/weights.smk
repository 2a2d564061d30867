# ImageNet weights for compute nodes without network (posedet/model/weights.py, `posedet weights`).
# A model whose recipe (or its overrides) says `model.pretrained: true` (the paper recipe) trains
# from a staged file, `--set model.pretrained_file=<dir>/<backbone>.pth`, with HF_HUB_OFFLINE=1 in
# its environment, so a training job never reaches for the network:
#
#   default: rule stage_weights, a localrule (the submitting / login node, which has network),
#            writes results/<preset>/weights/<backbone>.pth for every such backbone, and
#            weights.json (file, sha256, timm version) with `posedet weights --out`;
#   --config weights_dir=DIR (or a preset's `weights_dir:`): weights staged by hand
#            (`posedet weights --backbones ... --out DIR` on any machine with network, then
#            copied; relative to the repository); the trainings read DIR/<backbone>.pth and
#            stage_weights only checks them (`posedet weights --check --dir DIR`: present, and
#            matching DIR/weights.json where there is one), recording their sha256 in
#            results/<preset>/weights/weights.json. A missing file stops the DAG at planning.
#
# Recipes that train from scratch (synthetic, smoke: model.pretrained false) have nothing to
# stage: the rule has no job and the train commands are unchanged. The weights are inputs marked
# ancient(): staging them again (a new file time) never retrains a finished model.

from posedet.config import load_config as _load_config

# (dataset, variant, seed) -> the backbone whose ImageNet weights the model loads from timm
_PRETRAINED = {}
for _m in P.trained_models(PRESET, VARIANTS):
    _mc = _load_config(RECIPE, P.model_overrides(PRESET, VARIANTS, *_m)).model
    if _mc.pretrained and _mc.pretrained_file is None:
        _PRETRAINED[tuple(_m)] = _mc.backbone

STAGE_BACKBONES = sorted(set(_PRETRAINED.values()))
_WEIGHTS_GIVEN = config.get("weights_dir", PRESET.get("weights_dir"))
WEIGHTS_DIR = (
    str((REPO / str(_WEIGHTS_GIVEN)).resolve()) if _WEIGHTS_GIVEN else f"{RES}/weights"
)
WEIGHTS_RECORD = f"{RES}/weights/weights.json"
# (dataset, variant, seed) -> its staged file (common.smk: train_weights)
TRAIN_WEIGHTS = {m: f"{WEIGHTS_DIR}/{bb}.pth" for m, bb in _PRETRAINED.items()}
_STAGED_FILES = [f"{WEIGHTS_DIR}/{bb}.pth" for bb in STAGE_BACKBONES]


rule stage_weights:
    input:
        _STAGED_FILES if _WEIGHTS_GIVEN else [],
    output:
        [WEIGHTS_RECORD] + ([] if _WEIGHTS_GIVEN else _STAGED_FILES),
    params:
        posedet=POSEDET,
        args=(
            f"--check --backbones {' '.join(STAGE_BACKBONES)} --dir {shlex.quote(WEIGHTS_DIR)} "
            f"--manifest {WEIGHTS_RECORD}"
            if _WEIGHTS_GIVEN
            else f"--backbones {' '.join(STAGE_BACKBONES)} --out {WEIGHTS_DIR}"
        ),
    conda:
        ENV
    log:
        f"{RES}/logs/stage_weights.log",
    shell:
        "{params.posedet} weights {params.args} > {log} 2>&1"
