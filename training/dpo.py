"""Direct preference optimisation: `refinery dpo --from CKPT data=PAIRS out=DIR max_steps=N`.

Loss −log σ(β·[(log π − log π_ref)(chosen) − (log π − log π_ref)(rejected)]) with β = 0.1
(Rafailov et al. 2023), log π the summed log-probability of the answer tokens given the prompt.
The reference is the `--from` model itself: its log-probs are computed once, before the first
update, so no second model is kept in memory. Logged: the implicit rewards β·(log π − log π_ref)
of chosen and rejected answers, their margin, and accuracy (share of pairs with margin > 0).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from training import posttrain
from training.posttrain import PairBatch, PairExample
from training.train import autocast, console


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the implicit rewards of the chosen and rejected answers."""
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    return -F.logsigmoid(chosen_rewards - rejected_rewards), chosen_rewards, rejected_rewards


def answer_logprobs(runner, batch: PairBatch) -> torch.Tensor:
    """Summed log-probability of each row's answer tokens: (2B,)."""
    logprobs = posttrain.token_logprobs(runner, batch.tokens)
    return (logprobs * batch.mask[:, 1:]).sum(dim=1)


class DPOObjective(posttrain.PairObjective):
    name = "dpo"
    reads_source_on_resume = True

    @torch.no_grad()
    def prepare(self, module, examples: list[PairExample], device: torch.device) -> None:
        """Reference log-probs of every pair, once, from the untrained policy."""
        module.eval()
        for chunk in posttrain.micro_batches(examples, self.length, self.cfg.micro_batch):
            with autocast(device):
                chosen, rejected = answer_logprobs(module, self.collate(chunk, device)).chunk(2)
            for example, c, r in zip(chunk, chosen.tolist(), rejected.tolist(), strict=True):
                example.reference = (c, r)
        module.train()

    def loss(self, runner, batch: PairBatch):
        policy_chosen, policy_rejected = answer_logprobs(runner, batch).chunk(2)
        reference_chosen, reference_rejected = batch.reference.chunk(2)
        losses, chosen, rejected = dpo_loss(
            policy_chosen, policy_rejected, reference_chosen, reference_rejected, self.cfg.dpo.beta
        )
        return losses.sum(), posttrain.pair_figures(chosen.detach(), rejected.detach())


def main(argv: list[str] | None = None) -> int:
    return posttrain.main(DPOObjective, argv, __doc__)


if __name__ == "__main__":
    sys.exit(console(main))
