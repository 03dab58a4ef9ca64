"""Export: `refinery export --ckpt CKPT --hf DIR` writes a Hugging Face Llama-family model.

DIR gets `model.safetensors` + `config.json` that `transformers` loads as `LlamaForCausalLM`
(`Qwen3ForCausalLM` for a model with QK-norm; a mixture of experts as `Qwen3MoeForCausalLM`,
or `MixtralForCausalLM` without QK-norm), `generation_config.json` (generation stops at
the end of a document or of a chat turn, and never draws the rows that pad the vocabulary),
and the tokenizer (`tokenizer.json`, `tokenizer_config.json` with a Jinja chat template equal
to `refinery.tokenizer.encode_chat`, `special_tokens_map.json`), so lm-evaluation-harness and
other Hugging Face tools run on a Refinery model. Our architecture is Llama's, so the mapping
is one of names and splits:

* RoPE: `training.model.apply_rope` rotates the pairs (x[i], x[i + head_dim/2]), which is exactly
  Hugging Face's `rotate_half` convention, with the same inverse frequencies; q and k need no
  permutation (that is only needed for Meta's interleaved checkpoints).
* the fused `qkv` projection splits into q/k/v_proj (grouped-query heads keep their order:
  query head h reads kv head h // (n_heads / n_kv_heads) in both), `gate_up` into gate/up_proj.
* tied embeddings are written once (`tie_word_embeddings`).
* QK-norm (`model.qk_norm`, the `tiny` and `1b` presets): Llama has none, Qwen3 is Llama with
  epsilon, so such a model is written as Qwen3 (`q_norm`, `k_norm`).
* mixture of experts: our router is theirs (softmax over every expert, the top k, their
  weights renormalised when k > 1): Qwen3-MoE's `norm_topk_prob` says whether to renormalise,
  Mixtral always does, so a top-1 model without QK-norm, whose expert output is scaled by its
  gate probability, is refused rather than exported wrong. The expert capacity cap is a
  training device: in eval mode neither ours nor theirs drops a token. Experts are written
  one by one under the names the Hub's checkpoints use (transformers 5 fuses them on load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer

from refinery.cli import named_folder
from refinery.errors import RefineryError
from refinery.folder_lock import LOCK_FILE, folder_lock
from refinery.tokenizer import ASSISTANT, BOS, END_OF_TURN, EOS, PAD, ROLES, SPECIAL_TOKENS
from training.checkpoint import refuse_source_as_out, resolve_checkpoint, save_weights
from training.config import ModelConfig
from training.generate import SAMPLING_DEFAULTS
from training.model import resolved_expert_hidden, resolved_ffn_hidden
from training.pretrained import Pretrained, load_pretrained
from training.train import console


class ExportError(RefineryError):
    """A checkpoint that cannot be written as a Hugging Face model."""


def unsupported_features(cfg: ModelConfig) -> list[str]:
    """What the Hugging Face architectures we write cannot represent (empty: the export is
    exact)."""
    if cfg.moe.num_experts and cfg.moe.top_k == 1 and not cfg.qk_norm:
        return [
            "top-1 mixture of experts without QK-norm (Mixtral renormalises the gate to 1; "
            "Qwen3-MoE, which does not, needs QK-norm)"
        ]
    return []


def architecture(cfg: ModelConfig) -> str:
    if cfg.moe.num_experts:
        return "Qwen3MoeForCausalLM" if cfg.qk_norm else "MixtralForCausalLM"
    return "Qwen3ForCausalLM" if cfg.qk_norm else "LlamaForCausalLM"


def _model_type(cfg: ModelConfig) -> str:
    return {
        "Qwen3MoeForCausalLM": "qwen3_moe",
        "MixtralForCausalLM": "mixtral",
        "Qwen3ForCausalLM": "qwen3",
        "LlamaForCausalLM": "llama",
    }[architecture(cfg)]


def _moe_config(cfg: ModelConfig) -> dict:
    """The mixture-of-experts keys of config.json, as Qwen3-MoE or Mixtral names them."""
    moe = cfg.moe
    hidden = resolved_expert_hidden(cfg)
    # Hugging Face counts a token once per chosen expert (balanced: top_k), ours once (1)
    coefficient = moe.aux_loss_weight / moe.top_k
    shared = {"num_experts_per_tok": moe.top_k, "router_aux_loss_coef": coefficient}
    shared["output_router_logits"] = False
    if not cfg.qk_norm:
        return shared | {"num_local_experts": moe.num_experts, "intermediate_size": hidden}
    return shared | {
        "num_experts": moe.num_experts,
        "moe_intermediate_size": hidden,
        "norm_topk_prob": moe.top_k > 1,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    }


def llama_config(cfg: ModelConfig, token_ids: dict[str, int]) -> dict:
    """config.json for LlamaForCausalLM (Qwen3ForCausalLM with QK-norm), with the keys
    transformers 4.x reads (rope_theta, torch_dtype) and their 5.x spellings
    (rope_parameters, dtype); the test runs 5.x."""
    qwen3 = {"use_sliding_window": False, "sliding_window": None, "attention_dropout": 0.0}
    qwen3["layer_types"] = ["full_attention"] * cfg.n_layers
    extra = qwen3 if cfg.qk_norm else {}
    if cfg.moe.num_experts:
        extra = extra | {"sliding_window": None, "attention_dropout": 0.0} | _moe_config(cfg)
    return {
        "architectures": [architecture(cfg)],
        "model_type": _model_type(cfg),
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": resolved_ffn_hidden(cfg),
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads or cfg.n_heads,
        "head_dim": cfg.d_model // cfg.n_heads,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": cfg.init_std,
        "bos_token_id": token_ids[BOS],
        "eos_token_id": token_ids[EOS],
        "pad_token_id": token_ids[PAD],
        "torch_dtype": "float32",
        "dtype": "float32",
        "use_cache": True,
    } | extra


def llama_weights(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our state dict under Hugging Face names (Llama's, Qwen3's, Qwen3-MoE's or Mixtral's),
    fused projections split."""
    head_dim = cfg.d_model // cfg.n_heads
    kv_dim = (cfg.n_kv_heads or cfg.n_heads) * head_dim
    out = {
        "model.embed_tokens.weight": state["embed.weight"],
        "model.norm.weight": state["norm.weight"],
    }
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"]
    for i in range(cfg.n_layers):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        q, k, v = state[ours + "attn.qkv.weight"].split([cfg.d_model, kv_dim, kv_dim])
        out |= {
            theirs + "input_layernorm.weight": state[ours + "attn_norm.weight"],
            theirs + "self_attn.q_proj.weight": q,
            theirs + "self_attn.k_proj.weight": k,
            theirs + "self_attn.v_proj.weight": v,
            theirs + "self_attn.o_proj.weight": state[ours + "attn.out.weight"],
            theirs + "post_attention_layernorm.weight": state[ours + "ffn_norm.weight"],
        }
        out |= _feed_forward(state, cfg, ours + "ffn.", theirs)
        if cfg.qk_norm:
            out[theirs + "self_attn.q_norm.weight"] = state[ours + "attn.q_norm.weight"]
            out[theirs + "self_attn.k_norm.weight"] = state[ours + "attn.k_norm.weight"]
    return {name: tensor.detach().float().contiguous().clone() for name, tensor in out.items()}


def _feed_forward(
    state: dict[str, torch.Tensor], cfg: ModelConfig, ours: str, theirs: str
) -> dict[str, torch.Tensor]:
    """One layer's feed-forward under Hugging Face names: the dense SwiGLU, or the router and
    each expert's SwiGLU (Mixtral's w1 gate, w3 up, w2 down)."""

    def swiglu(prefix: str, names: tuple[str, ...], to: str) -> dict[str, torch.Tensor]:
        gate, up = state[prefix + "gate_up.weight"].chunk(2)  # as SwiGLU.forward splits it
        weights = (gate, up, state[prefix + "down.weight"])
        return {f"{to}{n}.weight": w for n, w in zip(names, weights, strict=True)}

    projections = tuple(f"{n}_proj" for n in PROJ)
    if not cfg.moe.num_experts:
        return swiglu(ours, projections, f"{theirs}mlp.")
    names = projections if cfg.qk_norm else MIXTRAL_PROJ
    block = f"{theirs}mlp." if cfg.qk_norm else f"{theirs}block_sparse_moe."
    out = {f"{block}gate.weight": state[ours + "router.weight"]}
    for e in range(cfg.moe.num_experts):
        out |= swiglu(f"{ours}experts.{e}.", names, f"{block}experts.{e}.")
    return out


PROJ = ("gate", "up", "down")
MIXTRAL_PROJ = ("w1", "w3", "w2")  # gate, up, down


def chat_template() -> str:
    """Jinja for `encode_chat`: BOS, then per message `<|role|>` content `<|end_of_turn|>`, and
    `<|assistant|>` for a generation prompt; other roles raise, as encode_chat does."""
    roles = ", ".join(f"'{role}': '{token}'" for role, token in ROLES.items())
    return (
        f"{{% set role_tokens = {{{roles}}} %}}"
        "{{ bos_token }}"
        "{% for message in messages %}"
        "{% if message['role'] not in role_tokens %}"
        "{{ raise_exception('role ' + message['role'] + ' is not system, user or assistant') }}"
        "{% endif %}"
        f"{{{{ role_tokens[message['role']] + message['content'] + '{END_OF_TURN}' }}}}"
        "{% endfor %}"
        f"{{% if add_generation_prompt %}}{{{{ '{ASSISTANT}' }}}}{{% endif %}}"
    )


def tokenizer_configs(seq_len: int) -> tuple[dict, dict]:
    """tokenizer_config.json and special_tokens_map.json for PreTrainedTokenizerFast."""
    extra = [token for token in SPECIAL_TOKENS if token not in (BOS, EOS, PAD)]
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "additional_special_tokens": extra,
        "add_bos_token": False,  # encode_chat adds BOS itself; documents never start with one
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": seq_len,
        "chat_template": chat_template(),
    }
    return config, {**special, "additional_special_tokens": extra}


def export_hf(ckpt: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write the Hugging Face folder `out` (atomically: a temp folder renamed at the end)."""
    # `--hf .` has no name to put the temp folder beside; a link to a folder (a scratch
    # disk) is replaced by its target, or the rename onto the link failed
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: is a file, not a folder for the Hugging Face model")
    here = Path.cwd().resolve()
    if out == here or out in here.parents:  # replacing it would delete the working directory
        raise ExportError(f"{out}: is the working directory or holds it: name a folder of its own")
    refuse_source_as_out(out, resolve_checkpoint(ckpt))
    _refuse_unforced(out, force)
    loaded = load_pretrained(ckpt)
    cfg = loaded.config.model
    refused = unsupported_features(cfg)
    if refused:
        raise ExportError(
            f"{loaded.path}: cannot export as a Hugging Face model: the model uses "
            + "; ".join(refused)
        )
    tokenizer = loaded.tokenizer()  # a clear error when the checkpoint has none
    staging = out.with_name(f".{out.name}.tmp")
    _refuse_foreign(staging)
    with folder_lock(staging, ExportError, "export", "--hf"):  # one export at a time
        (staging / STAGING_MARK).touch()
        try:
            _restore_replaced(staging, out)
            _clear(staging, _refuse_left)  # what an export killed here (SIGTERM, SIGKILL) left
            _refuse_unforced(out, force)  # an export that held the lock may have written it
            new = staging / "model"
            new.mkdir()
            _write_folder(new, loaded, tokenizer)
            if out.exists():  # one rename, whatever the old folder holds
                os.replace(out, staging / "replaced")
            os.replace(new, out)
        finally:
            _restore_replaced(staging, out)
            _clear(staging, _warn_left)
    return out


# `.<name>.tmp` beside --hf holds the export being written, under the folder's lock; this file
# marks it as an export's, so that no folder of the user's of that name (a checkpoint) is
# emptied for one. The folder stays, with its lock and mark alone: a lock file deleted while
# held lets a second export lock the deleted file and a third the new one, both at once.
STAGING_MARK = ".refinery-export"


def _restore_replaced(staging: Path, out: Path) -> None:
    """An export stopped between its two renames (Ctrl-C, SIGKILL) left the old export aside,
    the new beside it and none in their place: the old goes back. (The old alone there is an
    export that landed but could not remove it: a DIR deleted since is not brought back.)"""
    if not out.exists() and (staging / "replaced").is_dir() and (staging / "model").is_dir():
        os.replace(staging / "replaced", out)


def _refuse_unforced(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()) and not force:
        raise ExportError(f"{out}: exists and is not empty (use --force to replace it)")


def _refuse_foreign(staging: Path) -> None:
    """Refuse a `staging` that an export did not make."""
    if not staging.exists() and not staging.is_symlink():  # a dangling link is in the way
        return
    # one listing: an export marks the folder before it writes anything else there
    names = {p.name for p in staging.iterdir()} if staging.is_dir() else None
    if names is None or (STAGING_MARK not in names and names - {LOCK_FILE}):
        raise ExportError(
            f"{staging}: is in the way of the export's temp folder and is not one (it holds no "
            f"{STAGING_MARK}): move it, or export to another --hf"
        )


def _clear(staging: Path, onerror) -> None:
    """Remove what `staging` holds but its lock and mark (`onerror`: shutil.rmtree's)."""
    for leftover in staging.iterdir():
        if leftover.name not in (LOCK_FILE, STAGING_MARK):
            shutil.rmtree(leftover, onerror=onerror)


def _refuse_left(function, path, excinfo) -> None:
    raise ExportError(
        f"{path}: an earlier export's file that cannot be removed ({excinfo[1]}): remove it"
    )


def _warn_left(function, path, excinfo) -> None:
    """The replaced export's files that cannot be removed (a read-only folder in it) are said;
    the next export to that folder removes them, or says why it cannot."""
    print(f"warning: {path}: not removed ({excinfo[1]})", file=sys.stderr)


def _write_folder(tmp: Path, loaded: Pretrained, tokenizer: Tokenizer) -> None:
    """The Hugging Face files of `loaded` in `tmp`."""
    cfg = loaded.config.model
    weights = llama_weights(loaded.model.state_dict(), cfg)
    save_weights(weights, tmp / "model.safetensors", metadata={"format": "pt"})
    token_ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    tokenizer_config, special_map = tokenizer_configs(cfg.seq_len)
    files = {
        "config.json": llama_config(cfg, token_ids),
        # a chat model's reply ends at <|end_of_turn|>, a document at <|end_of_text|>
        "generation_config.json": {
            "bos_token_id": token_ids[BOS],
            "eos_token_id": [token_ids[EOS], token_ids[END_OF_TURN]],
            "pad_token_id": token_ids[PAD],
            "do_sample": True,
            **SAMPLING_DEFAULTS,
            # the rows that pad the vocabulary to a multiple of 64 decode to nothing:
            # `refinery generate` never draws them, nor may transformers
            "suppress_tokens": list(range(tokenizer.get_vocab_size(), cfg.vocab_size)),
        },
        "tokenizer_config.json": tokenizer_config,
        "special_tokens_map.json": special_map,
    }
    for name, content in files.items():
        (tmp / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(loaded.tokenizer_path, tmp / "tokenizer.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder (newest ckpt) or ckpt-<step>")
    parser.add_argument(
        "--hf", required=True, type=named_folder, help="output folder for the Hugging Face model"
    )
    parser.add_argument("--force", action="store_true", help="replace a non-empty --hf folder")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    out = export_hf(args.ckpt, args.hf, args.force)
    written = json.loads((out / "config.json").read_text())["architectures"][0]
    print(f"wrote {out} ({written} + tokenizer)")
    return 0


if __name__ == "__main__":
    sys.exit(console(main))
