# Helper functions shared by the rules (kept apart from the rules, as snakemake --lint asks).


def synth_params(wildcards):
    ds = P.dataset_spec(PRESET, f"{wildcards.name}/{wildcards.split}")
    if ds["kind"] != "synthetic":
        raise ValueError(f"{wildcards.name} is not a synthetic data set")
    # splits get distinct seeds derived from the data set's seed
    split_offset = {"train": 0, "val": 1000, "test": 2000}.get(wildcards.split, 3000)
    return dict(
        layout=ds["layout"],
        size=ds["size"],
        density=ds.get("density", "mixed"),
        seed=int(ds["seed"]) * 10000 + split_offset,
        num=ds["splits"][wildcards.split],
        # difficulty (posedet synth --help); defaults: the original, cluttered generator
        clutter=ds.get("clutter", "full"),
        max_people=int(ds.get("max_people", 9)),
        person_scale=float(ds.get("person_scale", 1.0)),
        texture=ds.get("texture", "full"),
    )


def set_title(set_name):
    """Human title of a data set for figure headings: says which set each figure used."""
    ds = P.dataset_spec(PRESET, set_name)
    if ds.get("title"):
        return ds["title"]
    if ds["kind"] == "synthetic":
        return f"{set_name} (synthetic, {ds['layout']} layout, {ds['size']} px)"
    return set_name


def set_ann(wildcards):
    """Annotation file of the ``{set}`` wildcard (a slug: ``synth_coco-val``)."""
    return P.annotation_file(PRESET, P.unslug(PRESET, wildcards.set), RES)


def set_images(set_name):
    root = P.image_root(PRESET, set_name, RES)
    if root is None:
        raise ValueError(f"data set {set_name} has no images (annotations only)")
    return root


def train_ann(wildcards):
    return P.annotation_file(PRESET, P.training_set(PRESET, wildcards.dataset), RES)


def train_images(wildcards):
    return set_images(P.training_set(PRESET, wildcards.dataset))


def _set_args(overrides):
    return " ".join(f"--set {shlex.quote(o)}" for o in overrides)


def model_overrides(wildcards):
    return P.model_overrides(PRESET, VARIANTS, wildcards.dataset, wildcards.variant, int(wildcards.seed))


def train_pretrained(wildcards):
    """The harness-made pretrained backbone this model starts from ([] if none)."""
    bb = P.model_backbone(RECIPE, model_overrides(wildcards))
    f = P.pretrain_file(PRESET, RES, bb)
    return [f] if f else []


def train_weights(wildcards):
    """The staged ImageNet weights file this model starts from ([] if none; rules/weights.smk)."""
    f = TRAIN_WEIGHTS.get((wildcards.dataset, wildcards.variant, int(wildcards.seed)))
    return [f] if f else []


def train_overrides(wildcards):
    extra = []
    if CURVE is not None:
        extra = P.curve_overrides(PRESET, wildcards.dataset, wildcards.variant, int(wildcards.seed))
    extra += [f"model.init_backbone={f}" for f in train_pretrained(wildcards)]
    extra += [f"model.pretrained_file={f}" for f in train_weights(wildcards)]
    return _set_args(model_overrides(wildcards) + extra + P.budget_overrides(BUDGET))


def pretrain_cli_args(wildcards):
    """``posedet pretrain`` settings of the backbone (the preset's pretrain: block) and the budget."""
    args = [f"--{k.replace('_', '-')} {v}" for k, v in P.pretrain_args(PRESET, wildcards.backbone).items()]
    return " ".join(args + P.budget_args(BUDGET))


def predict_overrides(wildcards):
    return _set_args(model_overrides(wildcards) + [f"infer.nms={wildcards.nms}"])


def predict_flags(wildcards):
    return {"refined": "", "coarse": "--coarse-only", "tta": "--tta"}[wildcards.mode]


def gpu_count(resources):
    """GPUs a job was given through the slurm plugin's ``gpu`` or ``gres`` resource (0: none)."""
    n = getattr(resources, "gpu", 0) or 0
    if n:
        return int(n)
    gres = str(getattr(resources, "gres", "") or "")
    for part in gres.split(","):
        bits = part.strip().split(":")
        if bits[0] == "gpu":
            return int(bits[-1]) if len(bits) > 1 and bits[-1].isdigit() else 1
    return 0


def train_launcher(wildcards, resources):
    """``posedet`` for one process; ``torchrun`` (one process per GPU, DDP) for several GPUs."""
    n = gpu_count(resources)
    if n > 1:
        return f"{PYTHON} -m torch.distributed.run --standalone --nproc_per_node {n} -m posedet"
    return POSEDET


def eval_files(kind, experiments=None):
    """Predictions or metrics files ('predictions' | 'metrics') of the named experiments (all: None),
    the peers' with them (the plan: posedet/plan.py)."""
    return PLAN.eval_files(kind, experiments)


def train_summaries():
    return PLAN.summaries()


def curve_files():
    return PLAN.curve_files()


def upper_bound_files():
    return PLAN.upper_bound_files()


def report_inputs(experiments=None):
    """What the report reads of the named experiments (all: None), besides plan.json (the plan)."""
    return PLAN.report_inputs(experiments)


def learning_curve_or_none():
    """The preset's learning_curve: block, if this checkout has `posedet curve` and the config
    keys its `set:` overrides name (else None, with a note: the curve is skipped; posedet/plan.py)."""
    curve, note = PL.learning_curve_run(PRESET)
    if note:
        print(f"posedet workflow: {note}", file=sys.stderr)
    return curve


def alternatives(names):
    """A wildcard regex matching exactly these names."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def bench_checkpoints():
    """Table 1's trained models (seed 0): the bench feeds their real candidates to NMS."""
    return list(PLAN.bench_checkpoints)


# --- Peers trained beside PoseDet (rules/peers.smk; an experiment's `peers:` list) -------------


def peer_val_set(wildcards):
    return P.peer_val_set(PRESET, wildcards.dataset)


def peer_val_ann(wildcards):
    return P.annotation_file(PRESET, peer_val_set(wildcards), RES)


def peer_val_images(wildcards):
    return set_images(peer_val_set(wildcards))


def peer_budget_args(wildcards):
    """The PoseDet baseline's budget on this training set: images (iterations x batch size,
    times --config budget=K), input size and batch size."""
    b = P.peer_budget(PRESET, VARIANTS, RECIPE, wildcards.dataset, int(wildcards.seed),
                      budget=config.get("budget", PRESET.get("budget", 1)))
    run = f"--images-budget {b['images']}" if "images" in b else f"--epochs {b['epochs']}"
    return f"{run} --imgsz {b['imgsz']} --batch {b['batch_size']}"
