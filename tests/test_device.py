"""The `device` setting: a preset key (auto | cpu | cuda), `--config device=` overrides it, every
device job of the workflow carries `--device`, `auto` resolves inside posedet, and CUDA asked for
on a machine without it is one line and exit 2. CUDA is never run here: `torch.cuda.is_available`
is monkeypatched."""
import json
from pathlib import Path

import pytest
import torch

from posedet import cli
from posedet import devices as D
from posedet import presets as P
from test_workflow import job_counts, jobs, snakemake

REPO = Path(__file__).resolve().parents[1]


def _shells(text, rule):
    return [j["shell"] for j in jobs(text) if j["rule"] == rule]


# ------------------------------------------------------------------------------- presets


def test_preset_device_key_defaults_and_validation():
    assert D.preset_device(P.load_preset("paper", REPO)) == "cuda"
    assert D.preset_device(P.load_preset("synthetic", REPO)) == "auto"
    assert D.preset_device(P.load_preset("smoke", REPO)) == "auto"
    gpu = P.load_preset("synthetic_gpu", REPO)
    gpu.pop("device", None)                                   # a preset without the key: auto
    assert D.preset_device(gpu) == "auto"
    bad = dict(P.load_preset("smoke", REPO), device="gpu")
    with pytest.raises(P.PresetError, match=r"device must be one of auto, cpu, cuda, got 'gpu'"):
        D.preset_device(bad)
    with pytest.raises(P.PresetError, match="auto, cpu, cuda"):
        D.preset_device(P.load_preset("smoke", REPO), {"device": "cuda:0"})


def test_config_device_overrides_the_preset_even_without_the_key():
    config = {"device": "cpu"}
    paper = P.load_preset("paper", REPO, overrides=config)
    assert D.preset_device(paper, config) == "cpu"
    gpu = P.load_preset("synthetic_gpu", REPO, overrides=config)
    gpu.pop("device", None)                                   # as if load_preset had ignored it
    assert D.preset_device(gpu, config) == "cpu"
    assert D.preset_device(gpu, {"device": "CUDA"}) == "cuda"


def test_bench_devices():
    paper = P.load_preset("paper", REPO)
    assert D.bench_devices(paper) == ["cuda", "cpu"]           # the GPU, the CPU column beside it
    assert D.bench_devices(paper, {"device": "cpu"}) == ["cpu"]  # --config device=: that device only
    assert D.bench_devices(P.load_preset("synthetic_gpu", REPO)) == ["cuda"]   # bench.device still works
    assert D.bench_devices(P.load_preset("synthetic", REPO)) == ["auto"]
    with pytest.raises(P.PresetError, match="bench: devices must be one of"):
        D.bench_devices(dict(paper, bench={"devices": ["cuda", "tpu"]}))


# ---------------------------------------------------------------------------- resolution


def test_auto_resolves_to_cuda_only_where_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.resolve_device("auto") == torch.device("cpu")
    assert D.resolve_device(None) == torch.device("cpu")
    assert D.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(D.DeviceError, match="CUDA is not available on this machine"):
        D.resolve_device("cuda")
    with pytest.raises(D.DeviceError, match="unknown device 'gpu': use auto | cpu | cuda"):
        D.resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert D.resolve_device("auto") == torch.device("cuda")
    assert D.resolve_device("auto", local_rank=1) == torch.device("cuda", 1)   # torchrun: one GPU a process
    assert D.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(D.DeviceError, match="has 2 GPU"):
        D.resolve_device("cuda:2")


def _one_line(err: str, prefix: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


def test_predict_device_cuda_without_cuda_exits_2_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = cli.main(["predict", "--checkpoint", str(tmp_path / "final.pt"), "--ann", str(tmp_path / "a.json"),
                   "--out", str(tmp_path / "r.json"), "--device", "cuda"])
    assert rc == 2
    line = _one_line(capsys.readouterr().err, "posedet predict: ")
    assert "CUDA is not available" in line and "--device cpu" in line
    assert not (tmp_path / "r.json").exists()


def test_train_device_cuda_without_cuda_exits_2_before_reading_data(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")     # train sets it: keep the test's env clean
    rc = cli.main(["train", "--config", str(REPO / "configs/recipes/smoke.yaml"), "--train-ann",
                   str(tmp_path / "no_such.json"), "--out", str(tmp_path / "run"), "--device", "cuda"])
    assert rc == 2
    assert "CUDA is not available" in _one_line(capsys.readouterr().err, "posedet train: ")
    assert not (tmp_path / "run").exists()


def test_bench_table_times_each_device_and_tags_rows(monkeypatch, tmp_path):
    """`posedet bench table --device cuda --device cpu`: one JSON, rows of both devices, the report
    sees a GPU and a CPU column (run_table itself is stubbed: no timing here)."""
    from posedet.bench import table as T
    from posedet.report.collect import Inputs
    from posedet.report.tables import bench_rows

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls = []

    def fake_run_table(mode, device, **kw):
        calls.append(device)
        row = {"method": "PoseDet", "backbone": "dla34", "short_side": 512, "device": device, "dtype": "fp32",
               "network_ms": 10.0 if device == "cuda" else 100.0, "fps": 100.0 if device == "cuda" else 10.0}
        return {"manifest": {"device": device, "mode": mode, "gpu": "GPU" if device == "cuda" else None,
                             "wall_s": 1.0},
                "rows": [row], "sweep": [dict(row, people=1)], "ratios": [{"what": "x", "network": 1.0}],
                "skipped": [], "paper_fps": []}

    monkeypatch.setattr(T, "run_table", fake_run_table)
    res = T.run_tables(["cuda", "cpu", "auto"], "quick")      # auto = cuda here: not timed twice
    assert calls == ["cuda", "cpu"]
    assert [r["device"] for r in res["rows"]] == ["cuda", "cpu"]
    assert [r["device"] for r in res["ratios"]] == ["cuda", "cpu"]
    m = res["manifest"]
    assert m["devices"] == ["cuda", "cpu"] and set(m["per_device"]) == {"cuda", "cpu"} and m["wall_s"] == 2.0
    out = tmp_path / "results" / "bench" / "table.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(res))
    rows, sweep, _ = bench_rows(Inputs(results=tmp_path / "results"))
    assert {r["device_kind"] for r in rows} == {r["device_kind"] for r in sweep} == {"gpu", "cpu"}


def test_bench_table_cli_device_cuda_without_cuda_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = cli.main(["bench", "table", "--preset-mode", "quick", "--device", "cuda", "--device", "cpu",
                   "--out", str(tmp_path / "t.json")])
    assert rc == 2
    assert "CUDA is not available" in _one_line(capsys.readouterr().err, "posedet bench table: ")
    assert not (tmp_path / "t.json").exists()


# ------------------------------------------------------------------------------ workflow


def test_dry_run_commands_carry_the_device(tmp_path):
    out = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--config", "preset=smoke",
                    "--", "reproduce_tables")
    text = out.stdout
    counts = job_counts(text)
    for rule in ("train", "predict", "curve", "bench_table", "peer_train", "peer_predict"):
        shells = _shells(text, rule)
        assert len(shells) == counts.get(rule, 0), rule
        assert all("--device auto " in s for s in shells), rule
    assert counts["train"] and counts["predict"] and counts["bench_table"] == 1


def test_config_device_override_reaches_every_job(tmp_path):
    out = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--config", "preset=smoke", "device=cpu",
                    "--", "reproduce_tables")
    text = out.stdout
    for rule in ("train", "predict", "bench_table"):
        shells = _shells(text, rule)
        assert shells and all("--device cpu " in s and "--device auto" not in s for s in shells), rule


def test_config_device_is_validated(tmp_path):
    out = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--config", "preset=smoke", "device=gpu",
                    "--", "reproduce_tables", check=False)
    assert out.returncode != 0
    assert "device must be one of auto, cpu, cuda, got 'gpu'" in out.stdout + out.stderr
