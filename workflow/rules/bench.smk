# Inference timing (Table 1's FPS column, the speed/accuracy figure): one `posedet bench table`
# run times the paper's backbones at the paper's input sizes (no trained weights needed for speed),
# with the peers beside them, under one protocol; quick mode on the smoke preset.

BENCH_MODE = PRESET.get("bench", {}).get("mode", "full")
# The device it times on: the CPU unless the preset's bench: block names one (synthetic_gpu: cuda);
# the CPU presets' command stays as it was (no --device flag).
BENCH_DEVICE = str(PRESET.get("bench", {}).get("device", "cpu"))


rule bench_table:
    input:
        preset=PRESET["_file"],
        checkpoints=bench_checkpoints(),
    output:
        f"{RES}/bench/table.json",
    params:
        posedet=POSEDET,
        mode=BENCH_MODE,
        device="" if BENCH_DEVICE == "cpu" else f" --device {BENCH_DEVICE}",
        ckpt=lambda wc, input: " ".join(
            f"--checkpoint {Path(c).parts[-4]}={c}" for c in input.checkpoints
        ),
    # every core --cores allows: nothing else runs on the machine while it times (set-threads on
    # a cluster); the bench records the thread count it used
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
