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
    )



def set_title(set_name):
    """Human title of a data set for figure headings: says which set each figure used."""
    ds = P.dataset_spec(PRESET, set_name)
    if ds.get("title"):
        return ds["title"]
    if ds["kind"] == "synthetic":
        return f"{set_name} (synthetic, {ds['layout']} layout, {ds['size']} px)"
    return set_name


def model_spec(name):
    try:
        return PRESET["models"][name]
    except KeyError:
        raise ValueError(f"preset {PRESET_NAME} has no model {name!r} (has: {', '.join(PRESET.get('models', {}))})") from None


def model_variant(name):
    """The model's variant config; a relative path is relative to the repository."""
    v = Path(model_spec(name)["variant"])
    return str(v if v.is_absolute() else REPO / v)


def model_overrides(name):
    return " ".join(f"--set {shlex.quote(o)}" for o in model_spec(name).get("overrides", []))


def set_images(set_name):
    root = P.image_root(PRESET, set_name, RES)
    if root is None:
        raise ValueError(f"data set {set_name} has no images (annotations only)")
    return root


def model_eval_targets(kind):
    """Every (model, eval set, mode) file of ``kind`` ('metrics' or 'predictions')."""
    out = []
    for name, spec in PRESET.get("models", {}).items():
        for s in spec["eval"]:
            for mode in ("refined", "coarse"):
                out.append(f"{RES}/{kind}/{name}/{P.slug(s)}.{mode}.json")
    return out
