import math

import pytest
import torch

from refinery.tokenizer import PAD_ID
from training.config import ModelConfig, MoEConfig
from training.float8 import convert_to_float8
from training.loss import CrossEntropy, next_token_loss
from training.model import (
    MoE,
    Transformer,
    apply_rope,
    make_dropless,
    resolved_ffn_hidden,
    rope_tables,
    rotate,
)


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=128, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=16)
    return ModelConfig(**{**base, **kw})


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = Transformer(tiny(qk_norm=True))
    batch = torch.randint(0, 128, (4, 17))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-2)
    first = None
    for _ in range(60):
        loss = model(batch[:, :-1], batch[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > math.log(128) - 0.5
    assert loss.item() < 0.05


def test_flops_per_token_matches_hand_count():
    cfg = tiny(tie_embeddings=False, ffn_hidden=96)
    model = Transformer(cfg)
    d, L, V, T, hd = 32, 2, 128, 16, 8
    attn = d * (d + 2 * 2 * hd) + d * d  # fused qkv with 2 kv heads, output projection
    ffn = d * 2 * 96 + 96 * d
    norms = 2 * d
    n_params = V * d + L * (attn + ffn + norms) + d + V * d  # embed, blocks, final norm, head
    assert model.num_params() == n_params
    # neither the embedding lookup nor the norms' gains are a matmul
    matmul_params = n_params - V * d - (L * norms + d)
    assert model.flops_per_token() == 6 * matmul_params + 12 * L * 4 * hd * T
    with_qk_norm = Transformer(tiny(tie_embeddings=False, ffn_hidden=96, qk_norm=True))
    assert with_qk_norm.num_params() > model.num_params()
    assert with_qk_norm.flops_per_token() == model.flops_per_token()


def test_tied_embeddings_share_one_matrix_and_count_the_head_flops():
    untied, tied = Transformer(tiny(tie_embeddings=False)), Transformer(tiny())
    assert untied.num_params() - tied.num_params() == 128 * 32
    assert "lm_head.weight" not in tied.state_dict()
    assert tied.flops_per_token() == untied.flops_per_token()


def test_ffn_hidden_default_is_llama_rounded():
    assert resolved_ffn_hidden(ModelConfig(d_model=768)) == 2048
    assert resolved_ffn_hidden(ModelConfig(d_model=64)) == 192


def test_attention_is_causal():
    torch.manual_seed(0)
    model = Transformer(tiny()).eval()
    x = torch.randint(0, 128, (1, 16))
    y = x.clone()
    y[0, 10] = (x[0, 10] + 1) % 128
    a, b = model(x), model(y)
    assert torch.allclose(a[0, :10], b[0, :10], atol=1e-6)
    assert not torch.allclose(a[0, 10:], b[0, 10:], atol=1e-6)


def test_residual_projections_get_smaller_init():
    torch.manual_seed(0)
    model = Transformer(tiny(d_model=256, n_heads=4, n_layers=8, vocab_size=256))
    std_q = model.blocks[0].attn.qkv.weight.std().item()
    std_out = model.blocks[0].attn.out.weight.std().item()
    assert std_q == pytest.approx(0.02, rel=0.05)
    assert std_out == pytest.approx(0.02 / 4, rel=0.05)


def test_moe_routes_top_k_with_aux_loss_and_capacity():
    torch.manual_seed(0)
    cfg = tiny(moe=MoEConfig(num_experts=4, top_k=2, capacity_factor=1.0))
    model = Transformer(cfg)
    x = torch.randint(0, 128, (2, 16))
    loss = model(x, x)
    aux = model.aux_loss()
    assert torch.is_tensor(aux) and aux.item() > 0
    (loss + aux).backward()
    assert model.blocks[0].ffn.router.weight.grad.abs().sum() > 0
    dense_flops = Transformer(tiny(ffn_hidden=resolved_ffn_hidden(cfg))).flops_per_token()
    per_expert = 3 * 32 * resolved_ffn_hidden(cfg)
    router = 32 * 4
    # two active experts instead of one dense FFN, plus the router, in each of 2 layers
    assert model.flops_per_token() == dense_flops + 6 * 2 * (per_expert + router)


def test_moe_capacity_drops_overflow_tokens():
    torch.manual_seed(0)
    moe = MoE(tiny(moe=MoEConfig(num_experts=2, top_k=1, capacity_factor=0.5)))
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0  # every token prefers expert 0
    x = torch.ones(1, 8, 32)
    y = moe(x)
    served = (y.abs().sum(-1) > 0).sum().item()
    assert served == math.ceil(0.5 * 8 * 1 / 2)
    # eval mode, or a dropless layer, serves every token
    assert (moe.eval()(x).abs().sum(-1) > 0).all()
    make_dropless(moe.train())
    assert (moe(x).abs().sum(-1) > 0).all()


def test_an_moe_row_in_eval_or_dropless_does_not_depend_on_the_rows_beside_it():
    """Capacity is shared by a forward's tokens, pads included: post-training's pairs, its
    reference log-probs and PPO's ratios need each row's output to be its own."""
    torch.manual_seed(0)
    model = Transformer(tiny(moe=MoEConfig(num_experts=4, top_k=1, capacity_factor=1.0)))
    rows = torch.randint(0, 128, (8, 16))
    rows[0, 1:] = rows[0, 0]  # a row whose tokens all go to one expert
    alone, beside = (lambda: model(rows[:1])[0]), (lambda: model(rows)[0])
    assert not torch.allclose(alone(), beside())  # training mode: capacity drops
    model.eval()
    torch.testing.assert_close(alone(), beside(), rtol=1e-5, atol=1e-5)
    make_dropless(model.train())
    torch.testing.assert_close(alone(), beside(), rtol=1e-5, atol=1e-5)


def test_an_expert_without_tokens_gets_a_zero_gradient_not_none():
    """FSDP reduce-scatters the parameters that have a gradient: a missing one on one rank
    mismatched the collective (gloo failed; NCCL could hang)."""
    torch.manual_seed(0)
    moe = MoE(tiny(moe=MoEConfig(num_experts=3, top_k=1)))
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0  # every token prefers expert 0
    moe(torch.ones(1, 8, 32)).sum().backward()
    idle = [p.grad for expert in moe.experts[1:] for p in expert.parameters()]
    assert all(g is not None and not g.any() for g in idle)
    assert all(p.grad.any() for p in moe.experts[0].parameters())


def test_rope_backward_is_the_inverse_rotation():
    # apply_rope's hand-written backward must be what autograd derives from the rotation
    torch.manual_seed(0)
    cos, sin = (t.double()[:, None] for t in rope_tables(8, 16, 10000.0))  # (T, 1, D/2)
    x = torch.randn(2, 16, 3, 8, dtype=torch.float64, requires_grad=True)  # (B, T, H, D)
    upstream = torch.randn(2, 16, 3, 8, dtype=torch.float64)
    (apply_rope(x, cos, sin) * upstream).sum().backward()
    written = x.grad.clone()
    x.grad = None
    (rotate(x, cos, sin) * upstream).sum().backward()
    torch.testing.assert_close(written, x.grad)
    assert torch.autograd.gradcheck(apply_rope, (x, cos, sin))
    # a rotation keeps each pair's length, and position 0 is not rotated
    rotated = apply_rope(x, cos, sin).detach()
    torch.testing.assert_close(rotated.norm(dim=-1), x.detach().norm(dim=-1))
    torch.testing.assert_close(rotated[:, 0], x.detach()[:, 0])


def test_cross_entropy_backward_is_softmax_minus_one_hot():
    # the loss's written-out backward must be what autograd derives from F.cross_entropy
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 11, (2, 5))
    loss = next_token_loss(logits, targets)
    (loss * 3).backward()
    written = logits.grad.clone()
    logits.grad = None
    reference = torch.nn.functional.cross_entropy(logits.view(-1, 11), targets.view(-1))
    (reference * 3).backward()
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(written, logits.grad)
    assert torch.autograd.gradcheck(CrossEntropy.apply, (logits.view(-1, 11), targets.view(-1)))
    # bf16 logits (autocast): the loss is still computed in fp32, the gradient comes back bf16
    half = logits.detach().bfloat16().requires_grad_()
    low = next_token_loss(half, targets)
    low.backward()
    assert low.dtype == torch.float32 and half.grad.dtype == torch.bfloat16
    torch.testing.assert_close(low, next_token_loss(half.float(), targets))


@pytest.mark.parametrize("moe", [0, 4])
@pytest.mark.parametrize("residual", [torch.float32, torch.bfloat16])
def test_runs_under_bf16_autocast_with_qk_norm_and_gqa(moe, residual):
    # the GPU path: bf16 matmul outputs meet fp32 norm weights and the residual stream, fp32
    # from the embedding or bf16 with autocast_residual, and it stays that dtype block to block
    model = Transformer(tiny(qk_norm=True, moe=MoEConfig(num_experts=moe)))
    model.autocast_residual = residual == torch.bfloat16
    seen = []
    for block in model.blocks:
        block.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = torch.randint(0, 128, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x, x)
    loss.backward()
    assert torch.isfinite(loss) and model.embed.weight.grad is not None
    assert seen == [residual] * len(model.blocks)
    assert model.embed.weight.grad.dtype == torch.float32  # master weights stay fp32
    model.zero_grad()
    assert model(x, x).dtype == torch.float32  # without autocast nothing changes: fp32 on CPU


@pytest.mark.parametrize("moe", [0, 4])
def test_activation_checkpointing_keeps_the_gradients_and_saves_only_block_inputs(moe):
    # train.activation_checkpointing: the same loss and gradients, while the backward keeps
    # only what the embedding and the head save (each block recomputes its own)
    torch.manual_seed(0)
    model = Transformer(tiny(n_layers=4, qk_norm=True, moe=MoEConfig(num_experts=moe)))
    batch = torch.randint(0, 128, (8, 17))

    def train_step(recompute: bool):
        model.checkpoint_blocks = recompute
        saved = []

        def pack(tensor):
            saved.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = model(batch[:, :-1], batch[:, 1:]) + model.aux_loss()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad()
        return loss.detach(), grads, sum(saved)

    loss, grads, kept = train_step(recompute=False)
    loss_ac, grads_ac, kept_ac = train_step(recompute=True)
    torch.testing.assert_close(loss_ac, loss)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ac[name], grad, msg=name)
    assert kept_ac < kept / 4, (kept_ac, kept)
    with torch.no_grad():  # evaluation and generation never recompute
        evaluated = model(batch[:, :-1], batch[:, 1:]) + model.aux_loss()
    torch.testing.assert_close(evaluated, loss)


VARIANTS = ["plain", "float8", "float8-stochastic-head", "activation-checkpointing"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_compiles_as_one_graph_and_matches_eager(variant):
    # The GPU presets train through torch.compile: a graph break would split the forward
    # (and lose fusions) without failing anything, so the dense model must compile whole,
    # also with train.float8's linear layers and output projection, and with each block
    # recomputed in the backward.
    torch.manual_seed(0)
    model = Transformer(tiny(qk_norm=True))
    if variant.startswith("float8"):
        convert_to_float8(model.blocks)
        model.float8_head = True
        if variant == "float8-stochastic-head":  # random bits drawn inside the compiled graph
            model.float8_head_rounding = "stochastic"
    model.checkpoint_blocks = variant == "activation-checkpointing"
    batch = torch.randint(0, 128, (4, 17))
    eager = model(batch[:, :-1], batch[:, 1:])
    eager.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)(batch[:, :-1], batch[:, 1:])
    compiled.backward()
    torch.testing.assert_close(compiled, eager)
    for name, p in model.named_parameters():
        if variant == "float8-stochastic-head":  # two independent draws of the rounding:
            error = (p.grad - expected[name]).norm() / expected[name].norm()  # Inductor's own
            assert error < 0.25, (name, error.item())
        else:
            torch.testing.assert_close(p.grad, expected[name], msg=name)


def test_moe_balance_statistics_leave_out_pads():
    """Post-training pads its rows with PAD: the load-balancing loss of a padded batch is
    that of its tokens alone, as in pretraining."""
    torch.manual_seed(0)
    model = Transformer(tiny(moe=MoEConfig(num_experts=4, top_k=2)))
    row = torch.randint(PAD_ID + 1, 128, (1, 9))
    model(row)
    alone = model.aux_loss()
    padded = torch.cat([row, torch.full((1, 7), PAD_ID)], dim=1)
    model(padded)
    torch.testing.assert_close(model.aux_loss(), alone)


def test_a_top_1_router_learns_from_the_language_model_loss():
    """Renormalising one chosen weight made it 1: the gate never scaled the expert's output,
    so the router's only gradient was the balancing loss's (Switch scales by the gate)."""
    torch.manual_seed(0)
    model = Transformer(tiny(moe=MoEConfig(num_experts=4, top_k=1, aux_loss_weight=0.0)))
    x = torch.randint(0, 128, (2, 16))
    model(x, x).backward()
    assert model.blocks[0].ffn.router.weight.grad.abs().max() > 1e-6  # was ~1e-10: rounding


def test_moe_reports_the_share_of_assignments_dropped_over_capacity():
    torch.manual_seed(0)
    moe = MoE(tiny(moe=MoEConfig(num_experts=2, top_k=1, capacity_factor=0.5)))
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0  # every token prefers expert 0: 2 of 8 served
    moe(torch.ones(1, 8, 32))
    assert moe.dropped == 6 / 8
    moe.eval()(torch.ones(1, 8, 32))
    assert moe.dropped == 0.0
