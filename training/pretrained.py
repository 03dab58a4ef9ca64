"""A checkpoint as a ready model: `load_pretrained(CKPT)` for post-training, eval and export.

Every command that starts from `--from CKPT` / `--ckpt CKPT` goes through here, so they all
accept a run folder (newest checkpoint) or one `ckpt-<step>/` folder, rebuild the architecture
from the checkpoint's own config.json and refuse weights that do not match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from refinery.config import ConfigError, from_dict
from training import checkpoint as ckpt
from training.config import TrainConfig
from training.model import Transformer


@dataclass
class Pretrained:
    path: Path  # the checkpoint folder itself
    config: TrainConfig
    model: Transformer
    weights: dict[str, torch.Tensor]  # everything in model.safetensors, heads included
    tokenizer_path: Path | None  # the checkpoint's copy of tokenizer.json, when it has one

    def tokenizer(self):
        """The checkpoint's tokenizer (special tokens checked), or a clear error."""
        from refinery.tokenizer import load_tokenizer

        if self.tokenizer_path is None:
            raise ckpt.CheckpointError(
                f"{self.path} has no tokenizer.json: it was trained on a tokens folder without "
                "one, so its token ids cannot be turned into text"
            )
        return load_tokenizer(self.tokenizer_path)


def load_config(path: Path) -> TrainConfig:
    try:
        return from_dict(TrainConfig, ckpt.load_config_dict(path))
    except ConfigError as err:
        raise ckpt.CheckpointError(f"{path}/config.json: {err}") from None


# Heads other commands add to the transformer and own (rm's score head, ppo's value head).
EXTRA_HEADS = ("score_head.", "value_head.")


def is_reward_model(weights: dict[str, torch.Tensor]) -> bool:
    """Whether the weights hold `refinery rm`'s score head."""
    return any(name.startswith("score_head.") for name in weights)


def load_pretrained(
    path: str | Path, device: str | torch.device = "cpu", accept_reward_model: bool = False
) -> Pretrained:
    """The transformer of `path` with its weights. Weights of extra heads (a reward model's
    score head, a value head) stay in `weights` for the caller that owns them. A reward model
    is refused unless `accept_reward_model`: its LM head was never what it trained, so sampling
    from it, exporting it or post-training it as a language model would be silently wrong
    (`refinery eval` accepts one, to measure what language modelling it kept)."""
    source = ckpt.resolve_checkpoint(path)
    cfg = load_config(source)
    weights = ckpt.load_weights(source)
    if not accept_reward_model and is_reward_model(weights):
        raise ckpt.CheckpointError(
            f"{source} is a reward model (refinery rm): it scores text and does not predict "
            "tokens; give a language model's checkpoint (train, anneal, sft, dpo or ppo)"
        )
    model = Transformer(cfg.model)
    own = model.state_dict()
    body = {name: tensor for name, tensor in weights.items() if name in own}
    unknown = sorted(n for n in weights if n not in own and not n.startswith(EXTRA_HEADS))
    if unknown:  # another shape than config.json says (more layers, an untied LM head)
        raise ckpt.CheckpointError(
            f"{source}/model.safetensors holds {len(unknown)} weights the model its config.json "
            f"describes does not have (first: {unknown[0]})"
        )
    missing = sorted(set(own) - set(body))
    if missing:
        raise ckpt.CheckpointError(
            f"{source}/model.safetensors lacks {len(missing)} weights of the model its "
            f"config.json describes (first: {missing[0]})"
        )
    for name, tensor in body.items():
        if tensor.shape != own[name].shape:
            raise ckpt.CheckpointError(
                f"{source}/model.safetensors: {name} has shape {tuple(tensor.shape)}, "
                f"config.json implies {tuple(own[name].shape)}"
            )
    model.load_state_dict(body)
    model.to(device)
    tokenizer = source / "tokenizer.json"
    return Pretrained(source, cfg, model, weights, tokenizer if tokenizer.is_file() else None)
