"""Mixture planning: per-domain sampling weights from target token proportions, capped so that
no domain is repeated more than `max_epochs` times, and the annealing mixture.

Every document is written once, into one bucket: its domain, or `anneal.<domain>` when it is
in the small high-quality annealing subset; proportions are realised by the trainer sampling
buckets by weight (DESIGN.md). With D the tokens one pass of the mixture trains on (`total_tokens`,
default: the corpus size) and T_d a domain's tokens, weight w_d means w_d * D / T_d epochs of
the domain. A domain whose target would exceed `max_epochs` is held at its cap and the rest of
its share goes to the other domains in proportion to their targets (water-filling), so repeats
stay bounded (Muennighoff et al. 2023: up to ~4 epochs are worth almost as much as new data).

Anneal documents are drawn out of their domains, so the pretrain weight of domain d is split
between its bucket and `anneal.<d>` by tokens: every document is read at its domain's rate,
and a domain targeted at 0 is not pretrained on at all, its anneal documents included (one
`anneal` bucket for all domains, read uniformly, pretrained on them at the bucket's average
rate). The anneal mixture gives the anneal buckets `share` by their tokens, the annealing
subset read uniformly, and every bucket the rest by its pretrain weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from refinery.config import ConfigError
from refinery.errors import RefineryError

ANNEAL = "anneal"
TOLERANCE = 1e-12


def anneal_bucket(domain: str) -> str:
    """The bucket of a domain's documents in the annealing subset."""
    return f"{ANNEAL}.{domain}"


class MixError(RefineryError):
    """Targets that no document can satisfy, or mixture plans that do not go together."""


@dataclass
class AnnealConfig:
    # Domains the annealing subset is drawn from (reference-like text, as Llama 3 / OLMo 2
    # anneal on their highest-quality sources); [] = every domain, by quality score alone.
    domains: list[str] = field(default_factory=lambda: ["encyclopedic", "science", "books"])
    # Share of those domains' documents (best quality scores first) moved to `anneal.<domain>`.
    top_fraction: float = 0.1
    # Weight of the anneal buckets in the anneal mixture; the rest follows the pretrain weights.
    share: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.top_fraction <= 1.0:
            raise ConfigError(f"mix.anneal.top_fraction must be in [0, 1], got {self.top_fraction}")
        if not 0.0 < self.share <= 1.0:
            raise ConfigError(f"mix.anneal.share must be in (0, 1], got {self.share}")


@dataclass
class MixConfig:
    # Target share of training tokens per domain; null = natural proportions. Domains with
    # documents but no target get weight 0 (reported, never dropped from OUT/mix/).
    targets: dict[str, float] | None = None
    max_epochs: float = 4.0  # Muennighoff et al. 2023, "Scaling Data-Constrained LMs"
    # Tokens one pass of the mixture trains on; null = the corpus size (as many as it holds).
    total_tokens: int | None = None
    # Tokens are estimated before tokenisation: ~4 characters per BPE token in English (GPT-2).
    chars_per_token: float = 4.0
    anneal: AnnealConfig = field(default_factory=AnnealConfig)

    def __post_init__(self) -> None:
        if self.targets is not None:
            if any(v < 0 for v in self.targets.values()) or sum(self.targets.values()) <= 0:
                raise ConfigError(f"mix.targets must be >= 0 with a positive sum: {self.targets}")
            if ANNEAL in self.targets:
                raise ConfigError("mix.targets: `anneal` is the annealing bucket, not a domain")
        if self.max_epochs <= 0:
            raise ConfigError(f"mix.max_epochs must be positive, got {self.max_epochs}")
        if self.chars_per_token <= 0:
            raise ConfigError(f"mix.chars_per_token must be positive, got {self.chars_per_token}")
        if self.total_tokens is not None and self.total_tokens <= 0:
            raise ConfigError(f"mix.total_tokens must be positive or null, got {self.total_tokens}")


def domain_weights(
    tokens: dict[str, int],
    targets: dict[str, float] | None,
    max_epochs: float,
    total_tokens: int | None = None,
) -> tuple[dict[str, float], int]:
    """Sampling weight per domain (summing to 1) and the pass size D they were planned for.

    Targets are renormalised over the domains that have tokens; a domain is capped at
    max_epochs * T_d / D and its excess goes to the uncapped domains by their targets. When
    even every targeted domain at its cap cannot fill D, D shrinks to what the caps allow.
    """
    present = {d: t for d, t in tokens.items() if t > 0}
    if not present:
        raise MixError("no tokens to mix: every domain is empty")
    wanted = {d: (targets.get(d, 0.0) if targets is not None else t) for d, t in present.items()}
    if sum(wanted.values()) <= 0:
        raise MixError(
            f"mix.targets {targets} name none of the domains with documents: {sorted(present)}"
        )
    size = total_tokens or sum(present.values())
    # Only domains with a target fill the pass: when even those at their caps cannot, shrink
    # it (the untargeted ones' tokens would not fill it, and the weights would not sum to 1).
    sampled = sum(t for d, t in present.items() if wanted[d] > 0)
    if max_epochs * sampled < size:
        size = int(max_epochs * sampled) or max_epochs * sampled  # under a token: not 0
    caps = {d: max_epochs * t / size for d, t in present.items()}
    capped: dict[str, float] = {}
    while True:
        free = {d: w for d, w in wanted.items() if d not in capped and w > 0}
        left = 1.0 - sum(capped.values())
        scale = left / sum(free.values()) if free else 0.0
        over = {d for d, w in free.items() if w * scale > caps[d] + TOLERANCE}
        if not over:
            break
        capped.update({d: caps[d] for d in over})
    weights = {d: capped.get(d, wanted[d] * scale) for d in present}
    return weights, size


def plan_mixture(
    domain_tokens: dict[str, int], anneal_tokens: dict[str, int], config: MixConfig
) -> dict[str, Any]:
    """Pretrain and anneal mixtures over buckets, with the report (see module doc).

    `domain_tokens`: tokens per domain, anneal documents included; `anneal_tokens`: tokens per
    domain moved into its anneal bucket.
    """
    weights, size = domain_weights(
        domain_tokens, config.targets, config.max_epochs, config.total_tokens
    )
    pretrain: dict[str, float] = {}
    for domain, weight in weights.items():
        moved = anneal_tokens.get(domain, 0) / domain_tokens[domain]
        if moved < 1.0:
            pretrain[domain] = weight * (1.0 - moved)
        if moved > 0.0:
            pretrain[anneal_bucket(domain)] = weight * moved
    anneal: dict[str, float] = {}
    moved_tokens = sum(anneal_tokens.values())
    if moved_tokens > 0:
        share = config.anneal.share
        anneal = {b: w * (1.0 - share) for b, w in pretrain.items()}
        for domain, t in anneal_tokens.items():
            if t:
                anneal[anneal_bucket(domain)] += share * t / moved_tokens
    corpus = sum(domain_tokens.values())
    report = {
        "tokens_per_pass": size,
        "max_epochs": config.max_epochs,
        "domains": {
            d: {
                "tokens": t,
                "share_before": t / corpus,
                "target": _target(d, config.targets, domain_tokens),
                "share_after": weights.get(d, 0.0),
                "epochs": weights.get(d, 0.0) * size / t if t else 0.0,
                "capped": bool(t) and weights.get(d, 0.0) * size / t >= config.max_epochs - 1e-9,
            }
            for d, t in sorted(domain_tokens.items())
        },
        "unsampled_domains": sorted(d for d, w in weights.items() if w == 0.0),
        # domains with anneal documents but no pretrain weight: trained on in annealing only
        # (meant for anneal-only sources; said, as a domain left out of mix.targets gives the
        # same, and mix.anneal.domains=[] draws from every domain)
        "anneal_only_domains": sorted(
            d for d, t in anneal_tokens.items() if t and not weights.get(d)
        ),
        # targets the run cannot meet at all: no document has the domain (the others share
        # their weight)
        "absent_targets": sorted(d for d in config.targets or {} if not domain_tokens.get(d)),
    }
    mixtures = {"pretrain": _rounded(pretrain)}
    if anneal:  # none without anneal documents: the trainer then anneals on `pretrain`
        mixtures["anneal"] = _rounded(anneal)
    return {"mixtures": mixtures, "report": report}


def counted_plan(settings: dict[str, Any], bucket_tokens: dict[str, int]) -> dict[str, Any]:
    """`plan_mixture` again, by the mix stage's `settings` (its MixConfig as a dict),
    on the tokens the tokenize stage counted per bucket: the mix stage plans on estimates
    (characters / chars_per_token, validation documents included), whose error differs by
    domain (code and prose), so copied weights drew one domain's documents at 0.93 of the
    uniform rate and another's at 1.01 under natural proportions in a trial."""
    config = MixConfig(**{**settings, "anneal": AnnealConfig(**settings["anneal"])})
    domain_tokens: dict[str, int] = {}
    anneal_tokens: dict[str, int] = {}
    for bucket, tokens in sorted(bucket_tokens.items()):
        domain = bucket.removeprefix(f"{ANNEAL}.")
        domain_tokens[domain] = domain_tokens.get(domain, 0) + tokens
        if domain != bucket:
            anneal_tokens[domain] = anneal_tokens.get(domain, 0) + tokens
    return plan_mixture(domain_tokens, anneal_tokens, config)


def unmet_targets(report: dict[str, Any], off_by: float = 0.01) -> str | None:
    """The domains whose weight misses its target by more than `off_by` (given a capped
    domain's excess), or capped at max_epochs repeats of their tokens short of it by more
    than that share of it (a small domain's 0.009 -> 0.004 is no 0.01 off), in one line;
    None when every target is met."""
    missed = {
        d: r
        for d, r in report["domains"].items()
        if r["tokens"]
        and (
            abs(r["share_after"] - r["target"]) > off_by
            or (r["capped"] and r["share_after"] < r["target"] * (1 - off_by))
        )
    }
    if not missed:
        return None
    listed = ", ".join(
        f"{d} {r['target']:.3f} -> {r['share_after']:.3f}" + (" (capped)" if r["capped"] else "")
        for d, r in missed.items()
    )
    return (
        f"targets not met with at most mix.max_epochs={report['max_epochs']:g} repeats of a "
        f"domain in a pass of {report['tokens_per_pass']:,} tokens: {listed}; raise "
        "mix.max_epochs or lower mix.total_tokens to meet them"
    )


def _target(domain: str, targets: dict[str, float] | None, tokens: dict[str, int]) -> float:
    """The domain's target renormalised over the domains with tokens (0 for one without)."""
    if not tokens.get(domain):
        return 0.0
    if targets is None:
        return tokens[domain] / sum(tokens.values())
    present = sum(v for d, v in targets.items() if tokens.get(d, 0) > 0)
    return targets.get(domain, 0.0) / present if present else 0.0


def _rounded(weights: dict[str, float]) -> dict[str, float]:
    """To 9 decimals; a weight that rounds to 0 is left out (a manifest weight is positive)."""
    rounded = {b: round(w, 9) for b, w in sorted(weights.items())}
    return {b: w for b, w in rounded.items() if w > 0}
