"""Reward model: `refinery rm --from CKPT data=PAIRS out=DIR max_steps=N [key=value ...]`.

The transformer with a scalar `score_head` reading the final hidden state of the last real
token, trained with the Bradley–Terry loss −log σ(r_chosen − r_rejected − margin) (Ouyang et
al. 2022; the margin as in Llama 2, Touvron et al. 2023). Held-out pairwise accuracy is logged
as `val_accuracy`. The head is saved as `score_head.*` in the checkpoint's model.safetensors, so
`load_reward_model(CKPT)` gives PPO and the LLM-judge a scorer: `RewardModel.score(token_lists)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training import posttrain
from training.checkpoint import CheckpointError
from training.config import ModelConfig
from training.model import Transformer
from training.posttrain import PAD_ID
from training.pretrained import Pretrained, is_reward_model, load_pretrained
from training.train import console


class RewardModel(Transformer):
    """A Transformer whose forward returns one score per sequence (right-padded with PAD)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        # zero-initialised: every answer starts with reward 0, so the first loss is exactly log 2
        self.score_head = nn.Linear(cfg.d_model, 1)
        nn.init.zeros_(self.score_head.weight)
        nn.init.zeros_(self.score_head.bias)
        # Bradley-Terry sees score differences only: the bias gets rounding noise, which AdamW
        # scaled into an offset that moved with the batch split; it stays 0 (as TRL's has none)
        self.score_head.bias.requires_grad_(False)
        if self.lm_head is not None:  # untied: unused by the score, and DDP needs every
            self.lm_head.requires_grad_(False)  # trained parameter in the loss

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores (B,) read at each row's last real token, `lengths - 1`: given, not counted
        from PAD ids, since a sampled answer may hold a PAD id before its end."""
        hidden = self.hidden(tokens)
        picked = hidden[torch.arange(tokens.shape[0], device=tokens.device), lengths - 1]
        return self.score_head(picked).squeeze(-1).float()

    @torch.no_grad()
    def score(self, token_lists: list[list[int]], batch_size: int = 16) -> torch.Tensor:
        """Scores (N,) on the CPU for token id lists (chat-encoded prompt + answer). A list longer
        than the model's context keeps its last seq_len tokens: the scored end of the answer."""
        was_training = self.training
        self.eval()
        device = self.embed.weight.device
        scores = []
        for i in range(0, len(token_lists), batch_size):
            rows = [ids[-self.cfg.seq_len :] for ids in token_lists[i : i + batch_size]]
            lengths = torch.tensor([len(row) for row in rows], device=device)
            scores.append(self(posttrain.pad_rows(rows, PAD_ID).to(device), lengths).cpu())
        self.train(was_training)
        return torch.cat(scores) if scores else torch.zeros(0)


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: float = 0.0
) -> torch.Tensor:
    """Per-pair −log σ(r_chosen − r_rejected − margin)."""
    return -F.logsigmoid(chosen - rejected - margin)


def reward_model_from(pretrained: Pretrained) -> RewardModel:
    """The pretrained body with its score head (zeros when the checkpoint has none)."""
    model = RewardModel(pretrained.config.model)
    state = model.state_dict()
    state.update(pretrained.model.state_dict())
    state.update({k: v for k, v in pretrained.weights.items() if k.startswith("score_head.")})
    model.load_state_dict(state)
    return model.to(pretrained.model.embed.weight.device)


def load_reward_model(path: str | Path, device: str | torch.device = "cpu") -> RewardModel:
    """A reward model written by `refinery rm` (run folder or ckpt-<step>), in eval mode."""
    pretrained = load_pretrained(path, device, accept_reward_model=True)
    if not is_reward_model(pretrained.weights):
        raise CheckpointError(
            f"{pretrained.path}/model.safetensors has no score_head.* weights: not a reward "
            "model (train one with `refinery rm --from CKPT data=PAIRS out=DIR`)"
        )
    return reward_model_from(pretrained).eval()


class RewardObjective(posttrain.PairObjective):
    """Bradley–Terry on (chosen, rejected) sequences scored at their last token."""

    name = "rm"

    def build(self, pretrained: Pretrained) -> RewardModel:
        return reward_model_from(pretrained)

    def loss(self, runner, batch: posttrain.PairBatch):
        # A pair's answer, and so its last supervised token, ends each row.
        lengths = batch.mask.shape[1] - batch.mask.flip(1).argmax(dim=1)
        scores = runner(batch.tokens, lengths)
        chosen, rejected = scores.chunk(2)
        losses = bradley_terry_loss(chosen, rejected, self.cfg.rm.margin)
        return losses.sum(), posttrain.pair_figures(chosen.detach(), rejected.detach())


def main(argv: list[str] | None = None) -> int:
    return posttrain.main(RewardObjective, argv, __doc__)


if __name__ == "__main__":
    sys.exit(console(main))
