# Preflight: before any job runs or is submitted, `posedet check` (posedet/check.py) checks the
# run this preset + --config describe: data roots, every annotation file through the training
# reader, every image named, the ImageNet weights offline, the device. One line per problem, then
# the plan; any problem stops the workflow here. `--config check=false` skips it.

from snakemake.exceptions import WorkflowError

from posedet import check as preflight_check

DEVICE_RULES = preflight_check.DEVICE_RULES


def rules_without_gpu():
    """Device rules with jobs in this run that the executor's resources (the profile's
    set-resources) give no GPU."""
    with_jobs = {"train", "predict", "bench_table"}
    if CURVE is not None:
        with_jobs.add("curve")
    if P.peer_evals(PRESET):
        with_jobs |= {"peer_train", "peer_predict"}
    missing = []
    for name in (r for r in DEVICE_RULES if r in with_jobs):
        try:
            res = workflow.get_rule(name).resources
        except Exception:  # a rule this checkout does not have
            continue
        if not (res.get("gpu") or "gpu" in str(res.get("gres", "") or "")):
            missing.append(name)
    return missing


def run_preflight():
    if str(config.get("check", True)).lower() in ("false", "0", "no", "off"):
        print("posedet check: skipped (--config check=false)", file=sys.stderr)
        return
    where = "local" if workflow.local_exec else "cluster"
    outcome = preflight_check.preflight(dict(config, preset=PRESET_NAME), REPO, where,
                                       rules_without_gpu() if where == "cluster" else None)
    for line in outcome.lines():
        print(f"posedet check: {line}", file=sys.stderr)
    n = len(outcome.problems)
    print(f"posedet check: {n} problem{'s' if n != 1 else ''}" + ("" if n else ", ready to run"),
          file=sys.stderr)
    if outcome.problems:
        raise WorkflowError(f"posedet check: {len(outcome.problems)} problem(s) above; nothing was run "
                            "(--config check=false skips the preflight)")


onstart:
    run_preflight()
