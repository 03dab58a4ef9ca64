"""`refinery export --hf`: transformers loads the folder as LlamaForCausalLM (Qwen3ForCausalLM
with QK-norm; Qwen3MoeForCausalLM or MixtralForCausalLM for a mixture of experts) with our
logits and our tokenizer's ids; what none of them can represent is refused by name."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import another_run_holding

from refinery.cli import main as cli
from refinery.config import to_dict
from refinery.tokenizer import encode_chat, load_tokenizer
from training.checkpoint import CheckpointError, save_checkpoint
from training.config import ModelConfig, MoEConfig, TrainConfig
from training.export_hf import STAGING_MARK, ExportError, export_hf
from training.model import Transformer

transformers = pytest.importorskip("transformers")  # a dev dependency: CI always has it


def write_checkpoint(root: Path, tokenizer: Path, **model) -> tuple[Path, Transformer]:
    """A checkpoint of random weights, norms included, so a swapped or misplaced tensor shows."""
    cfg = TrainConfig(model=ModelConfig(vocab_size=384, seq_len=32, **model))
    torch.manual_seed(0)
    net = Transformer(cfg.model)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * (0.3 if p.ndim == 1 else 0.05))
    ckpt = save_checkpoint(root, 1, net.state_dict(), {}, {}, to_dict(cfg), {}, tokenizer, 0)
    return ckpt, net.eval()


@pytest.mark.parametrize(
    ("tied", "qk_norm", "moe", "architecture"),
    [(True, False, None, "LlamaForCausalLM"), (False, False, None, "LlamaForCausalLM")]
    + [(True, True, None, "Qwen3ForCausalLM")]  # QK-norm: Qwen3 is Llama with exactly ours
    + [(True, True, MoEConfig(num_experts=4, top_k=2), "Qwen3MoeForCausalLM")]
    + [(True, True, MoEConfig(num_experts=3, top_k=1, ffn_hidden=48), "Qwen3MoeForCausalLM")]
    + [(False, False, MoEConfig(num_experts=4, top_k=2), "MixtralForCausalLM")],
)
def test_transformers_reproduces_our_logits(
    text_tokens, tmp_path, tied, qk_norm, moe, architecture
):
    ckpt, ours = write_checkpoint(
        tmp_path / "run",
        text_tokens / "tokenizer.json",
        n_kv_heads=2,
        tie_embeddings=tied,
        qk_norm=qk_norm,
        moe=moe or MoEConfig(),
    )
    assert cli(["export", "--ckpt", str(tmp_path / "run"), "--hf", str(tmp_path / "hf")]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["num_key_value_heads"] == 2 and config["tie_word_embeddings"] is tied
    assert config["architectures"] == [architecture]
    auto = transformers.AutoModelForCausalLM
    theirs = auto.from_pretrained(tmp_path / "hf", dtype=torch.float32)
    assert type(theirs).__name__ == architecture
    tokens = torch.randint(0, 384, (3, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ours(tokens)
        got = theirs(tokens).logits
    assert expected.abs().max() > 1.0  # the comparison is not between near-zero logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert theirs.generation_config.eos_token_id == [1, 6]  # <|end_of_text|>, <|end_of_turn|>
    assert theirs.generation_config.temperature == 0.6 and theirs.generation_config.top_k == 0
    if moe:  # the same weighted balancing loss: theirs is top_k when balanced, ours 1
        with torch.no_grad():
            routed = theirs(tokens, output_router_logits=True, labels=tokens)
        weighted = routed.aux_loss * theirs.config.router_aux_loss_coef
        aux = torch.stack([block.ffn.aux_loss for block in ours.blocks]).mean()
        assert weighted.item() == pytest.approx(moe.aux_loss_weight * aux.item(), rel=0.05)


def test_transformers_never_generates_the_rows_that_pad_the_vocabulary(text_tokens, tmp_path):
    real = load_tokenizer(text_tokens / "tokenizer.json").get_vocab_size()
    assert real < 384
    cfg = TrainConfig(model=ModelConfig(vocab_size=384, seq_len=32))
    ours = Transformer(cfg.model).eval()
    with torch.no_grad():
        ours.embed.weight[real:] *= 500  # tied: the padding rows would win every argmax
    tokenizer = text_tokens / "tokenizer.json"
    save_checkpoint(tmp_path / "run", 1, ours.state_dict(), {}, {}, to_dict(cfg), {}, tokenizer, 0)
    export_hf(tmp_path / "run", tmp_path / "hf")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32)
    prompt = torch.tensor([[0, 20, 30]] * 8)
    with torch.no_grad():
        assert ours(prompt)[:, -1].argmax(-1).min() >= real  # what an unmasked draw would take
        for sample in (False, True):
            torch.manual_seed(0)
            new = theirs.generate(
                prompt, attention_mask=torch.ones_like(prompt), do_sample=sample, max_new_tokens=8
            )[:, 3:]
            assert new.numel() and new.max() < real


def test_the_hf_tokenizer_encodes_text_and_chats_like_ours(text_tokens, tmp_path):
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    export_hf(tmp_path / "run", tmp_path / "hf")
    ours = load_tokenizer(text_tokens / "tokenizer.json")
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert (theirs.bos_token, theirs.eos_token, theirs.pad_token) == (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|pad|>",
    )
    for text in ["The cat sees a red ball.", "  two  spaces\nand a caf\u00e9 \u2014 ok", ""]:
        assert theirs(text)["input_ids"] == ours.encode(text).ids
    literal = "a page quoting <|end_of_text|> and <|user|>"  # HF makes them special tokens
    assert theirs(literal, split_special_tokens=True)["input_ids"] == ours.encode(literal).ids
    assert theirs(literal)["input_ids"] != ours.encode(literal).ids
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who sees the ball?"},
        {"role": "assistant", "content": "The cat."},
        {"role": "user", "content": "And the dog?"},
    ]
    for prompt in (False, True):
        text = theirs.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        ids = theirs(text, add_special_tokens=False)["input_ids"]
        assert ids == encode_chat(ours, messages, generation_prompt=prompt)
    with pytest.raises(Exception, match="role tool is not system, user or assistant"):
        theirs.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_a_top_1_mixture_of_experts_without_qk_norm_is_refused_by_name(
    text_tokens, tmp_path, capsys
):
    model = {"moe": MoEConfig(num_experts=2, top_k=1)}
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json", **model)
    assert cli(["export", "--ckpt", str(tmp_path / "run"), "--hf", str(tmp_path / "hf")]) == 2
    assert "the model uses top-1 mixture of experts without QK-norm" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()


def test_an_existing_folder_is_kept_unless_forced(text_tokens, tmp_path):
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists and is not empty"):
        export_hf(tmp_path / "run", tmp_path / "hf")
    export_hf(tmp_path / "run", tmp_path / "hf", force=True)
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_a_folder_holding_the_checkpoint_is_never_replaced(text_tokens, tmp_path, monkeypatch):
    """`--force` replaces the output folder: one above the checkpoint's run would take the
    checkpoint (and its neighbours) with it."""
    project = tmp_path / "project"
    write_checkpoint(project / "runs" / "train", text_tokens / "tokenizer.json")
    (project / "notes.txt").write_text("mine")
    for out in (project, project / "runs"):
        with pytest.raises(CheckpointError, match="the checkpoint read from"):
            export_hf(project / "runs" / "train", out, force=True)
    assert (project / "notes.txt").exists() and (project / "runs" / "train").is_dir()


def test_the_working_directory_or_an_empty_path_is_no_output_folder(
    text_tokens, tmp_path, monkeypatch, capsys
):
    """`--hf .` replaced the working directory (the shell was left in a deleted one), and
    `--hf "$UNSET" --force` deleted everything in it."""
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    (tmp_path / "work" / "sub").mkdir(parents=True)
    (tmp_path / "work" / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path / "work" / "sub")
    for out in (".", "..", tmp_path / "work"):
        with pytest.raises(ExportError, match="is the working directory or holds it"):
            export_hf(tmp_path / "run", out, force=True)
    assert (tmp_path / "work" / "notes.txt").exists() and Path.cwd().is_dir()
    with pytest.raises(SystemExit) as usage:
        cli(["export", "--ckpt", str(tmp_path / "run"), "--hf", "", "--force"])
    assert usage.value.code == 2
    assert "an empty path (an unset variable?)" in capsys.readouterr().err


def test_a_link_to_a_folder_is_exported_into_that_folder(text_tokens, tmp_path):
    """The rename onto the link failed ("Not a directory") and left a copy in .hf.tmp."""
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    (tmp_path / "scratch" / "hf").mkdir(parents=True)
    (tmp_path / "hf").symlink_to(tmp_path / "scratch" / "hf")
    export_hf(tmp_path / "run", tmp_path / "hf")
    assert (tmp_path / "scratch" / "hf" / "model.safetensors").is_file()
    assert (tmp_path / "hf").is_symlink()
    assert sorted(p.name for p in (tmp_path / "scratch" / ".hf.tmp").iterdir()) == [
        ".lock",
        STAGING_MARK,
    ]


def test_weights_are_as_readable_as_the_checkpoint_s_other_files(text_tokens, tmp_path):
    """safetensors writes 0600 whatever the umask: a teammate's eval or export could read
    every file of a checkpoint but its weights, and of an export."""
    ckpt, _ = write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    hf = export_hf(tmp_path / "run", tmp_path / "hf")
    for folder in (ckpt, hf):
        mode = (folder / "config.json").stat().st_mode
        assert (folder / "model.safetensors").stat().st_mode == mode


def test_a_folder_of_the_user_s_where_the_temp_folder_goes_is_refused_not_emptied(
    text_tokens, tmp_path
):
    """The temp folder `.hf.tmp` was emptied first: a checkpoint of that name was deleted."""
    write_checkpoint(tmp_path / ".hf.tmp", text_tokens / "tokenizer.json")
    with pytest.raises(ExportError, match=r"\.hf\.tmp: is in the way of the export's temp"):
        export_hf(tmp_path / ".hf.tmp", tmp_path / "hf")
    assert (tmp_path / ".hf.tmp" / "ckpt-1" / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hf.tmp"]


def test_a_failed_export_leaves_the_old_export_and_an_empty_staging_folder(
    text_tokens, tmp_path, monkeypatch
):
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    export_hf(tmp_path / "run", tmp_path / "hf")

    monkeypatch.setattr("training.export_hf.save_weights", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_hf(tmp_path / "run", tmp_path / "hf", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hf.tmp", "hf", "run"]
    assert (tmp_path / "hf" / "model.safetensors").is_file()


def test_a_killed_export_s_files_are_removed_by_the_next(text_tokens, tmp_path):
    """SIGTERM or SIGKILL runs no cleanup: the next export to the folder clears them."""
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    (tmp_path / ".hf.tmp" / "model").mkdir(parents=True)
    (tmp_path / ".hf.tmp" / STAGING_MARK).touch()
    (tmp_path / ".hf.tmp" / "model" / "model.safetensors").write_bytes(b"half")
    export_hf(tmp_path / "run", tmp_path / "hf")
    assert sorted(p.name for p in (tmp_path / ".hf.tmp").iterdir()) == [".lock", STAGING_MARK]


@pytest.mark.parametrize("dangling", [False, True])
def test_an_export_stopped_between_its_renames_puts_the_old_one_back(
    text_tokens, tmp_path, dangling
):
    """Ctrl-C there deleted both the old export and the new; a SIGKILL left them for the next
    export, which deleted both, unforced (`dangling`: the next export puts it back first)."""
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    export_hf(tmp_path / "run", tmp_path / "hf")
    (tmp_path / "hf" / "README.md").write_text("mine")
    rename = os.replace

    def stopped_after_the_first(source, target):
        rename(source, target)
        if Path(target).name == "replaced":
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("training.export_hf.os.replace", stopped_after_the_first)
        if dangling:  # as a SIGKILL would leave it: no cleanup ran
            patch.setattr("training.export_hf._restore_replaced", lambda *args: None)
            patch.setattr("training.export_hf._clear", lambda *args: None)
        with pytest.raises(KeyboardInterrupt):
            export_hf(tmp_path / "run", tmp_path / "hf", force=True)
    if dangling:  # the next export, unforced, finds the old one back in place
        assert not (tmp_path / "hf").exists()
        with pytest.raises(ExportError, match="exists and is not empty"):
            export_hf(tmp_path / "run", tmp_path / "hf")
    assert (tmp_path / "hf" / "README.md").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / ".hf.tmp").iterdir()) == [".lock", STAGING_MARK]


def test_an_old_export_left_behind_is_not_brought_back_once_deleted(text_tokens, tmp_path):
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    export_hf(tmp_path / "run", tmp_path / "hf")
    (tmp_path / ".hf.tmp" / "replaced").mkdir()  # one the export that landed could not remove
    (tmp_path / ".hf.tmp" / "replaced" / "README.md").write_text("old")
    shutil.rmtree(tmp_path / "hf")  # the user deletes the export, then exports afresh
    export_hf(tmp_path / "run", tmp_path / "hf")
    assert not (tmp_path / "hf" / "README.md").exists()
    assert sorted(p.name for p in (tmp_path / ".hf.tmp").iterdir()) == [".lock", STAGING_MARK]


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_dangling_link_in_the_staging_folder_s_place_is_refused(text_tokens, tmp_path):
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    (tmp_path / ".hf.tmp").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="is in the way of the export's temp folder"):
        export_hf(tmp_path / "run", tmp_path / "hf")


def test_a_second_export_to_a_folder_waits_for_none_and_replaces_none(text_tokens, tmp_path):
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    (tmp_path / ".hf.tmp").mkdir()
    (tmp_path / ".hf.tmp" / STAGING_MARK).touch()
    refused = pytest.raises(ExportError, match=r"in use by another export .* another --hf")
    with another_run_holding(tmp_path / ".hf.tmp"), refused:
        export_hf(tmp_path / "run", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_an_old_export_that_cannot_be_emptied_is_still_replaced(text_tokens, tmp_path, capsys):
    """A read-only folder in it: 9190981 deleted the old export but for that folder, and the new
    one too, under a message that blamed another export."""
    write_checkpoint(tmp_path / "run", text_tokens / "tokenizer.json")
    export_hf(tmp_path / "run", tmp_path / "hf")
    (tmp_path / "hf" / "notes").mkdir()
    (tmp_path / "hf" / "notes" / "keep.txt").write_text("mine")
    real_rmtree = shutil.rmtree

    def read_only_notes(path, *args, **kwargs):
        if Path(path).name == "replaced":  # as a user without write access to notes/ would
            raise_in = kwargs.get("onerror")
            raise_in(os.unlink, str(Path(path) / "notes" / "keep.txt"), (None, OSError(13), None))
            return
        real_rmtree(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("training.export_hf.shutil.rmtree", read_only_notes)
        export_hf(tmp_path / "run", tmp_path / "hf", force=True)
    assert "notes/keep.txt: not removed" in capsys.readouterr().err
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert not (tmp_path / "hf" / "notes").exists()
    assert (tmp_path / ".hf.tmp" / "replaced").is_dir()
    export_hf(tmp_path / "run", tmp_path / "hf", force=True)  # once it can, the next clears it
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hf.tmp", "hf", "run"]
