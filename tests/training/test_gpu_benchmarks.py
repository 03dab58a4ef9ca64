"""The GPU benchmark scripts run on a lent device with minutes to spare: their CPU modes must
keep working, so a broken case is found here rather than on the device's clock."""

import json
import sys

import pytest

from benchmarks import block_timing, device_session, float8_parity, train_throughput
from benchmarks.train_profile import by_kind, kind
from refinery.config import load_config
from training.config import TrainConfig


def test_block_timing_variants_match_the_model():
    assert block_timing.check() == 0


def test_train_throughput_smoke_runs_every_case(tmp_path):
    out = tmp_path / "smoke.json"
    assert train_throughput.main(["--smoke", "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["name"] for r in results] == [c.name for c in train_throughput.SMOKE_CASES]
    assert all("error" not in r and r["tokens_per_s"] > 0 for r in results)
    assert results[1]["float8"] and results[1]["float8_head"]


def test_gpu_cases_are_named_once_and_the_required_four_come_first(tmp_path):
    names = [c.name for c in train_throughput.GPU_CASES]
    assert len(set(names)) == len(names)  # --only selects by name
    for case in train_throughput.GPU_CASES:  # every setting a valid config key and value
        train_throughput.make_config(case, tmp_path, tmp_path / case.name)
    required = ["gpt2-124m-eager", "gpt2-124m-coordinate-descent", "350m-compiled", "1b-eager"]
    assert names[:4] == required


def test_only_refuses_a_case_name_it_does_not_know(tmp_path, capsys):
    args = ["--smoke", "--out", str(tmp_path / "x.json"), "--only", "tiny-eager", "tiny-eagre"]
    assert train_throughput.main(args) == 2
    assert "unknown case tiny-eagre" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_profile_kinds_follow_kernel_names():
    assert kind("cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16") == "attention"
    assert kind("nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT") == "matmul"
    # Inductor names a kernel after what it fuses: the ops around a float8 matmul, not one
    assert kind("triton_poi_fused__fused_rms_norm__scaled_mm__to_copy_clamp") == "norm"
    assert kind("triton_red_fused__to_copy_logsumexp_2") == "loss"
    assert kind("triton_red_fused_abs_amax_view_6") == "triton reduction"
    assert kind("void at::native::multi_tensor_apply_kernel<FusedAdamMathFunctor>") == (
        "optimizer and clipping"
    )
    kernels = [{"name": "nvjet_a", "ms": 2.0}, {"name": "triton_poi_x", "ms": 3.0}]
    assert by_kind([*kernels, {"name": "nvjet_b", "ms": 2.0}]) == {
        "matmul": 4.0,
        "triton pointwise": 3.0,
    }


def test_parity_runs_a_named_candidate_against_the_reference(tokens, tmp_path):
    # on CPU the residual stream is fp32 either way: the two runs must agree exactly
    out, runs = tmp_path / "out", tmp_path / "runs"
    args = ["--out", str(out), "--tokens", str(tokens), "--seeds", "0", "--window", "2"]
    args += ["--runs", str(runs), "--candidate", "train.autocast_residual=true", "max_steps=4"]
    assert float8_parity.main(args) == 0
    assert [p.name for p in out.iterdir()] == ["parity.json"]  # checkpoints stay in --runs
    assert (runs / "float8-seed0" / "ckpt-4").is_dir()
    report = json.loads((out / "parity.json").read_text())
    assert report["candidate"] == ["train.autocast_residual=true"]
    means = report["seeds"]["0"]["window_means"]
    assert len(means["reference"]) == 2 and means["reference"] == means["float8"]
    again = report["seeds"]["0"]["final_weights"]
    figures = [again[run][how] for run in again for how in again[run]]
    assert len(figures) == 4 and all(f == figures[0] for f in figures)
    assert again["reference"]["as reference"]["val"] == pytest.approx(
        report["seeds"]["0"]["reference"]["val_loss"]  # the run's own final validation
    )


def test_parity_measures_the_final_weights_as_each_run_computes(tokens, tmp_path):
    args = ["--out", str(tmp_path), "--tokens", str(tokens), "--seeds", "0", "--window", "2"]
    args += ["--candidate", "train.float8_head=true", "max_steps=4"]
    assert float8_parity.main(args) == 0
    again = json.loads((tmp_path / "parity.json").read_text())["seeds"]["0"]["final_weights"]
    for run in ("reference", "float8"):  # the float8 head's forward moves a loss, a little
        exact, float8 = (again[run][how]["train"] for how in ("as reference", "as candidate"))
        assert exact != float8 and float8 == pytest.approx(exact, rel=0.01)


def test_device_session_parts_are_valid_settings(tmp_path, capsys):
    parts = device_session.parts(tmp_path)
    parity = parts["parity-stochastic"][0]
    assert parity[-len(device_session.PARITY_SHAPE) :] == device_session.PARITY_SHAPE
    # 1.1 GB checkpoints per run stay out of $OUT, whose files the device tool brings back
    assert not parity[parity.index("--runs") + 1].startswith(str(tmp_path))
    candidate = [parity[i + 1] for i, arg in enumerate(parity) if arg == "--candidate"]
    settings = [*float8_parity.DEFAULTS, *device_session.PARITY_SHAPE, *candidate]
    cfg = load_config(TrainConfig, float8_parity.TINY, [*settings, f"data={tmp_path}", "out=x"])
    assert cfg.train.float8_head and cfg.train.float8_head_rounding == "stochastic"
    assert (cfg.model.d_model, cfg.model.n_layers, cfg.model.seq_len) == (768, 12, 1024)
    throughput = parts["throughput"][0]
    names = throughput[throughput.index("--only") + 1 :]
    assert set(names) <= {case.name for case in train_throughput.GPU_CASES}
    assert all(limit < 600 for _, limit in parts.values())  # the device tool's per-call limit
    dry_run = ["run", "checks", "parity-nearest", "--dry-run", "--out", str(tmp_path / "o")]
    assert device_session.main(dry_run) == 0
    assert "train.float8_head_rounding=nearest" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()
    assert device_session.main(["run", "chekcs", "--out", str(tmp_path)]) == 2
    assert "unknown part chekcs" in capsys.readouterr().err


def test_device_session_stops_a_part_at_its_limit_and_keeps_its_log(tmp_path, capsys):
    sleeper = [sys.executable, "-c", "print('started', flush=True); import time; time.sleep(60)"]
    status = device_session.run_logged(sleeper, 1, tmp_path / "part.log")
    assert status == "timed out at 1 s"
    assert (tmp_path / "part.log").read_text() == "started\n"
    assert "started" in capsys.readouterr().out
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    assert device_session.run_logged(failing, 10, tmp_path / "x.log") == "failed with status 3"


def test_the_device_session_and_parity_build_their_own_tokens(tmp_path, monkeypatch):
    """`device_session prepare` is the device plan's first step and `float8_parity` without
    --tokens its documented form: both build a tokens folder (from ../shared/data; here from a
    small text set standing in for it)."""
    from benchmarks import scaling_sweep

    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(words[(7 * d + k) % 300] for k in range(120)) for d in range(60)]
    monkeypatch.setattr(scaling_sweep, "training_documents", lambda: texts[:50])
    monkeypatch.setattr(scaling_sweep, "heldout_wikipedia", lambda: texts[50:])
    monkeypatch.setattr(device_session, "TOKENS", tmp_path / "device-tokens")
    assert device_session.prepare() == 0
    assert (tmp_path / "device-tokens" / "manifest.json").is_file()
    out = tmp_path / "parity"
    args = ["--out", str(out), "--seeds", "0", "--window", "1", "--vocab", "320"]
    args += ["--candidate", "train.autocast_residual=true", "max_steps=2", "model.seq_len=32"]
    assert float8_parity.main(args) == 0
    assert (out / "tokens" / "manifest.json").is_file() and (out / "parity.json").is_file()
