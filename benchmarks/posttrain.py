"""Post-training on ../shared/data/sft/ and /preference/ with a small model: SFT loss curve,
reward-model held-out accuracy, DPO margin and accuracy.

    python benchmarks/posttrain.py --work /tmp/posttrain-bench [--pretrain-steps 300] [--steps 100]

Every stage runs through its real command (`refinery train`, `sft`, `rm`, `dpo`). The base
model (d_model 128, 4 layers, seq_len 256, byte-level BPE of 4096 ids) is pretrained on the
shared Wikipedia and C4 demo text; SFT then runs on Alpaca-GPT4 (alpaca_en_demo.json), reward
models on each preference file from the SFT model, DPO on Anthropic HH harmless-base. Prints
figures; asserts nothing. Skips (exit 0) when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from refinery.cli import main as refinery  # noqa: E402
from training.checkpoint import list_checkpoints  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
BASE = [
    "model.d_model=128",
    "model.n_layers=4",
    "model.n_heads=4",
    "model.n_kv_heads=4",
    "model.seq_len=256",
    "train.global_batch_tokens=8192",
    "train.micro_batch=8",
    "train.eval_every=0",
    "train.progress=false",
    "train.tensorboard=false",
    "schedule.warmup_steps=20",
]
PREFERENCES = {
    "hh-harmless": "preference/hh_rlhf_harmless_base_test.jsonl.gz",
    "llamafactory-dpo": "preference/llamafactory_dpo_en_demo.json",
    "pandalm": "preference/pandalm_testset_v1.json",
}


def pretraining_texts() -> list[str]:
    texts = [
        line.strip()
        for line in (SHARED / "wikipedia" / "llamafactory_wiki_demo.txt").open(encoding="utf-8")
        if len(line.strip()) > 200
    ]
    with (SHARED / "lowquality" / "c4_demo_unlabeled_web.jsonl").open(encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def stage(name: str, out: Path, args: list[str]) -> None:
    """Run `refinery <args> out=<out>`, unless an earlier run of the benchmark finished it."""
    if list_checkpoints(out):
        print(f"[{name}: done before, {out}]", flush=True)
        return
    start = time.perf_counter()
    if refinery([*args, f"out={out}"]) != 0:
        raise SystemExit(f"{name} failed: refinery {' '.join(args)}")
    print(f"[{name}: {time.perf_counter() - start:.0f} s]", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the runs")
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=100, help="steps of each SFT/RM/DPO run")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} absent: nothing to benchmark")
        return 0
    from training.synthetic import write_text_dataset

    work = args.work
    tokens = work / "tokens"
    if not (tokens / "manifest.json").is_file():
        write_text_dataset(tokens, pretraining_texts(), vocab_size=4096)
    base, sft, dpo = work / "base", work / "sft", work / "dpo"
    every = max(1, args.steps // 4)
    common = ["progress=false", f"max_steps={args.steps}", f"eval_every={every}"]
    train = ["train", "--config", str(REPO / "conf/train/tiny.yaml"), f"data={tokens}"]
    stage("pretrain", base, [*train, f"max_steps={args.pretrain_steps}", *BASE])
    alpaca = SHARED / "sft" / "alpaca_en_demo.json"
    stage("sft", sft, ["sft", "--from", str(base), f"data={alpaca}", *common])
    rm_runs = {}
    for name, path in PREFERENCES.items():
        out = work / f"rm-{name}"
        rm_runs[name] = out
        stage(f"rm {name}", out, ["rm", "--from", str(sft), f"data={SHARED / path}", *common])
    pairs = SHARED / PREFERENCES["hh-harmless"]
    stage("dpo", dpo, ["dpo", "--from", str(sft), f"data={pairs}", *common])

    base_rows = metrics(base)
    print(f"\npretrain: loss {base_rows[0]['loss']:.3f} -> {base_rows[-1]['loss']:.3f}")
    print("\nSFT on alpaca_en_demo.json (loss per supervised token, nats)")
    print("step  loss   val_loss  supervised_fraction")
    for row in metrics(sft):
        if row["step"] == 1 or "val_loss" in row:
            val = f"{row['val_loss']:.3f}" if "val_loss" in row else "  -  "
            print(
                f"{row['step']:4d}  {row['loss']:.3f}  {val:>8}  {row['supervised_fraction']:.3f}"
            )
    print("\nreward model from the SFT model: pairwise accuracy")
    print("data                train_acc(last step)  val_acc  val_margin  held-out pairs")
    for name, out in rm_runs.items():
        last = metrics(out)[-1]
        held = json.loads((out / f"ckpt-{args.steps}" / "meta.json").read_text())["examples"]
        print(
            f"{name:<18}  {last['accuracy']:.3f}                 {last['val_accuracy']:.3f}"
            f"    {last['val_margin']:+.3f}      {held['heldout']}"
        )
    print("\nDPO on hh_rlhf_harmless_base_test.jsonl.gz (beta 0.1)")
    print("step  loss   margin  accuracy  val_margin  val_accuracy")
    for row in metrics(dpo):
        if "val_margin" in row or row["step"] == 1:
            val = (
                f"{row['val_margin']:+.3f}      {row['val_accuracy']:.3f}"
                if "val_margin" in row
                else ""
            )
            print(
                f"{row['step']:4d}  {row['loss']:.3f}  {row['margin']:+.3f}  {row['accuracy']:.3f}"
                f"     {val}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
