# Inference timing (Table 1's FPS column, the speed/accuracy figure): one `posedet bench table`
# run times the paper's backbones at the paper's input sizes (no trained weights needed for speed),
# with the peers beside them, under one protocol; quick mode on the smoke preset.

BENCH_MODE = PRESET.get("bench", {}).get("mode", "full")
# The devices it times, in turn, in one run and one JSON (rows tagged with their device; the
# report's Table 1 gets an FPS column per device kind): --config device=X alone if given, else
# the preset's bench: devices: list (paper: [cuda, cpu]), else bench: device: (synthetic_gpu:
# cuda), else the preset's device: (default auto; posedet/devices.py bench_devices).
BENCH_DEVICES = D.bench_devices(PRESET, config)


rule bench_table:
    input:
        preset=PRESET["_file"],
        checkpoints=bench_checkpoints(),
        # Alone by construction: the bench waits for every other job of the run (their outputs
        # are its inputs; only the report and the aggregation targets come after it), so no job
        # of this workflow shares the machine while it times, whatever --cores allows.
        after=PLAN.bench_after() + [f"{RES}/plan.json"],
    output:
        f"{RES}/bench/table.json",
    params:
        posedet=POSEDET,
        mode=BENCH_MODE,
        device="".join(f" --device {d}" for d in BENCH_DEVICES),
        ckpt=lambda wc, input: " ".join(
            f"--checkpoint {Path(c).parts[-4]}={c}" for c in input.checkpoints
        ),
    # every core --cores allows (set-threads on a cluster); the bench records the thread count
    threads: 64
    conda:
        ENV
    log:
        f"{RES}/logs/bench/table.log",
    shell:
        "{params.posedet} bench table --preset-mode {params.mode}{params.device} {params.ckpt} --out {output} > {log} 2>&1"


rule fps:
    input:
        f"{RES}/bench/table.json",
