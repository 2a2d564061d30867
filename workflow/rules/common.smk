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
