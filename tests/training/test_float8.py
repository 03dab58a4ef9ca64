"""Float8 linear layers: numerics against fp32, what gets converted, training through them."""

import pytest
import torch
from train_helpers import read_metrics, train_args

from refinery.cli import main as refinery
from refinery.config import ConfigError
from training.config import ModelConfig, MoEConfig
from training.float8 import (
    E4M3,
    E5M2,
    Float8Linear,
    Float8Matmul,
    convert_to_float8,
    float8_head_loss,
    float8_linear,
    round_stochastically,
    to_float8,
)
from training.loss import next_token_loss
from training.model import Transformer
from training.train import check_float8


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want).norm() / want.norm()).item()


def model(**kw) -> Transformer:
    base = dict(vocab_size=128, d_model=32, n_layers=2, n_heads=4, seq_len=16)
    return Transformer(ModelConfig(**{**base, **kw}))


@pytest.mark.parametrize("dtype", [E4M3, E5M2])
def test_to_float8_fills_the_range_and_scales_back(dtype):
    x = torch.randn(64, 48) * 1e-3  # far below float8's range: the scale brings it up
    scaled, inverse = to_float8(x, dtype)
    assert scaled.dtype == dtype
    assert scaled.float().abs().max().item() == torch.finfo(dtype).max
    mantissa_bits = 3 if dtype == E4M3 else 2
    assert relative_error(scaled.float() * inverse, x) < 2.0**-mantissa_bits
    zeros, inverse = to_float8(torch.zeros(16, 16), dtype)  # no inf or nan from an all-zero x
    assert torch.isfinite(inverse) and not zeros.float().any()


def test_the_cpu_float8_product_keeps_fp32_sums_under_autocast():
    """Off CUDA the float8 operands are multiplied upcast; autocast must not turn that into a
    bf16 matmul (`_scaled_mm`, which CUDA runs, ignores autocast)."""
    from training.float8 import scaled_mm

    torch.manual_seed(0)
    a, a_inverse = to_float8(torch.randn(64, 256), E4M3)
    b, b_inverse = to_float8(torch.randn(96, 256), E4M3)
    exact = (a.double() @ b.double().t()) * (a_inverse.double() * b_inverse.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = scaled_mm(a, b.t(), a_inverse, b_inverse, torch.float32)
    assert out.dtype == torch.float32
    assert ((out.double() - exact).abs().max() / exact.abs().max()).item() < 1e-6


def test_float8_matmul_is_close_to_fp32_forward_and_backward():
    torch.manual_seed(0)
    x = torch.randn(4, 32, 64, requires_grad=True)
    weight = torch.randn(96, 64, requires_grad=True)
    upstream = torch.randn(4, 32, 96)
    Float8Matmul.apply(x, weight).backward(upstream)
    got = Float8Matmul.apply(x.detach(), weight.detach())
    x_ref = x.detach().requires_grad_()
    w_ref = weight.detach().requires_grad_()
    want = x_ref @ w_ref.t()
    want.backward(upstream)
    # e4m3 keeps 3 mantissa bits, e5m2 (gradients) 2: a few percent over a whole tensor
    assert relative_error(got, want.detach()) < 0.06
    assert relative_error(x.grad, x_ref.grad) < 0.1
    assert relative_error(weight.grad, w_ref.grad) < 0.1
    assert x.grad.dtype == x.dtype and weight.grad.dtype == weight.dtype


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_float8_head_loss_is_close_to_fp32_forward_and_backward(rounding):
    torch.manual_seed(0)
    hidden = (torch.randn(2, 24, 64) * 0.3).requires_grad_()
    weight = torch.randn(160, 64, requires_grad=True)
    targets = torch.randint(0, 160, (2, 24))
    loss = float8_head_loss(hidden, weight, targets, rounding)
    (loss * 3).backward()  # the upstream gradient (accumulation, loss weights) scales it all
    h_ref, w_ref = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
    want = next_token_loss(h_ref @ w_ref.t(), targets)
    (want * 3).backward()
    assert abs(loss.item() - want.item()) < 0.02 * want.item()
    assert relative_error(hidden.grad, h_ref.grad) < 0.1
    assert relative_error(weight.grad, w_ref.grad) < 0.1
    assert hidden.grad.dtype == weight.grad.dtype == torch.float32


@pytest.mark.parametrize("sharpness", [1.0, 100.0])
def test_the_fixed_gradient_scale_matches_a_measured_one(sharpness):
    # against the float8 projection with the gradient's scale from its absolute maximum: at
    # sharpness 100 softmax is one-hot, every entry at the edge of [-1, 1], and the fixed
    # scale must neither overflow e5m2 nor lose the gradient
    torch.manual_seed(0)
    hidden = (torch.randn(2, 24, 64) * sharpness).requires_grad_()
    weight = torch.randn(160, 64, requires_grad=True)
    targets = torch.randint(0, 160, (2, 24))
    (float8_head_loss(hidden, weight, targets) * 3).backward()
    h_ref, w_ref = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
    (next_token_loss(float8_linear(h_ref, w_ref), targets) * 3).backward()
    assert torch.isfinite(hidden.grad).all() and torch.isfinite(weight.grad).all()
    assert relative_error(hidden.grad, h_ref.grad) < 0.05
    assert relative_error(weight.grad, w_ref.grad) < 0.05


def test_float8_head_loss_under_autocast_keeps_an_fp32_loss_and_weight_grad():
    hidden = torch.randn(2, 8, 32, requires_grad=True)
    weight = torch.randn(64, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = float8_head_loss(hidden, weight, torch.randint(0, 64, (2, 8)))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert weight.grad.dtype == torch.float32 and hidden.grad.dtype == torch.float32


def test_float8_linear_under_autocast_outputs_bf16_and_keeps_fp32_weight_grads():
    linear = torch.nn.Linear(64, 32, bias=False)
    convert_to_float8(torch.nn.ModuleList([linear]))
    x = torch.randn(8, 64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert linear.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32


def test_an_expert_no_token_chose_runs_on_zero_rows():
    """An idle expert still runs (every parameter in the graph for DDP/FSDP): its 0 rows have
    no maximum to scale by, and amax() raised mid-run."""
    linear = torch.nn.Linear(64, 32, bias=False)
    convert_to_float8(torch.nn.ModuleList([linear]))
    for autocast in (False, True):
        linear.weight.grad = None
        x = torch.zeros(0, 64, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = linear(x)
        assert out.shape == (0, 32) and out.dtype == (torch.bfloat16 if autocast else x.dtype)
        out.float().sum().backward()
        assert linear.weight.grad.dtype == torch.float32 and not linear.weight.grad.any()


def test_a_float8_moe_trains_through_an_idle_expert():
    from training.config import ModelConfig, MoEConfig
    from training.model import MoE

    torch.manual_seed(0)
    moe = MoE(ModelConfig(d_model=64, moe=MoEConfig(num_experts=3, top_k=1)))
    assert convert_to_float8(moe) == 6  # each expert's two linears; the router stays
    with torch.no_grad():  # every token to expert 0: the others get no rows
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0
    x = torch.ones(2, 8, 64, requires_grad=True)
    moe(x).sum().backward()
    assert torch.isfinite(x.grad).all() and not moe.experts[1].gate_up.weight.grad.any()


def test_conversion_takes_the_blocks_linears_and_keeps_the_state_dict():
    torch.manual_seed(0)
    dense = model(tie_embeddings=False)
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    assert convert_to_float8(dense.blocks) == 2 * 4  # qkv, out, gate_up, down per block
    assert type(dense.lm_head) is torch.nn.Linear  # the output projection stays in bf16
    assert isinstance(dense.blocks[0].attn.qkv, Float8Linear)
    after = dense.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)

    moe = model(moe=MoEConfig(num_experts=4, top_k=2))
    # 2 attention linears and 4 experts x 2 per block; the router stays
    assert convert_to_float8(moe.blocks) == 2 * (2 + 4 * 2)
    assert type(moe.blocks[0].ffn.router) is torch.nn.Linear

    odd = torch.nn.ModuleList([torch.nn.Linear(24, 32, bias=False)])  # 24: not a multiple of 16
    assert convert_to_float8(odd) == 0


@pytest.mark.parametrize("head", [None, "nearest", "stochastic"])
def test_a_float8_model_overfits_one_batch(head):
    torch.manual_seed(0)
    net = model()
    convert_to_float8(net.blocks)
    net.float8_head = head is not None
    net.float8_head_rounding = head or "nearest"
    batch = torch.randint(0, 128, (4, 17))
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = net(batch[:, :-1], batch[:, 1:])
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize("head", [None, "nearest", "stochastic"])
def test_trainer_runs_with_float8(tokens, tmp_path, capsys, head):
    out = tmp_path / "run"
    args = train_args(tokens, out, "max_steps=6", "train.float8=true")
    if head:
        args += ["train.float8_head=true", f"train.float8_head_rounding={head}"]
    assert refinery(args) == 0
    said = capsys.readouterr().out.splitlines()[0]  # the run's one-line description
    float8 = {
        None: "float8 blocks",
        "nearest": "float8 blocks + head",
        "stochastic": "float8 blocks + head, stochastically rounded",
    }[head]
    assert f"fp32, {float8}, compile off" in said, said
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_float8_on_a_gpu_without_float8_matmuls_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA A100")
    with pytest.raises(ConfigError, match="8.9.*A100"):
        check_float8(torch.device("cuda"))
    check_float8(torch.device("cpu"))  # CPU multiplies upcast float8: tests and smoke runs


@pytest.mark.parametrize(
    "head", [[], ["train.float8_head=true", "train.float8_head_rounding=stochastic"]]
)
def test_float8_run_resumes_exactly(tokens, tmp_path, head):
    # the scales come from the tensors themselves: nothing to checkpoint, nothing to drift;
    # stochastic rounding draws from the RNG, seeded each step from (seed, rank, step)
    whole, split = tmp_path / "whole", tmp_path / "split"
    common = ["seed=2", "train.float8=true", "ckpt_every=4", *head]
    assert refinery(train_args(tokens, whole, "max_steps=8", *common)) == 0
    assert refinery(train_args(tokens, split, "max_steps=4", *common)) == 0
    assert refinery([*train_args(tokens, split, "max_steps=8", *common), "--resume"]) == 0
    assert [r["loss"] for r in read_metrics(split)] == [r["loss"] for r in read_metrics(whole)]


def test_each_rank_and_step_rounds_with_its_own_noise():
    """One RNG stream on every rank made the ranks' rounding errors alike: averaging the
    gradients over ranks did not shrink them."""
    from training.float8 import rounding_seed

    seeds = {
        rounding_seed(seed, rank, step) for seed in (0, 1) for rank in (0, 1, 2) for step in (0, 1)
    }
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)
    gradient = torch.rand(4096) * 1e-3
    rounded = []
    for rank in (0, 1):
        torch.manual_seed(rounding_seed(0, rank, 5))
        rounded.append(round_stochastically(gradient).float())
    assert not torch.equal(rounded[0], rounded[1])
    torch.manual_seed(rounding_seed(0, 1, 5))
    assert torch.equal(round_stochastically(gradient).float(), rounded[1])


def test_stochastic_rounding_lands_on_a_neighbour_and_is_right_on_average():
    torch.manual_seed(0)
    for value in (0.3, -0.3):
        draws = round_stochastically(torch.full((200_000,), value)).float()
        neighbours = {0.25, 0.3125}  # e5m2 in [0.25, 0.5): steps of 1/16
        assert set(draws.abs().unique().tolist()) == neighbours
        assert draws.mean().item() == pytest.approx(value, rel=1e-3)
    exact = torch.tensor([0.0, 0.3125, -1.0, 2.0**-14])  # representable: never moved
    assert torch.equal(round_stochastically(exact).float(), exact)


def test_rounding_benchmark_casts_as_the_head_does():
    from benchmarks import float8_rounding

    exact = float8_rounding.gradient_rows(512, 8, (0.1, 0.5), torch.Generator().manual_seed(0))
    assert exact.sum(-1).abs().max() < 1e-12  # softmax minus one-hot: rows sum to zero
    nearest = float8_rounding.rounded(exact, "e5m2")
    head = (exact.float() * 2.0**15).to(E5M2).double() / 2.0**15  # Float8HeadLoss's cast
    assert torch.equal(nearest, head)
    bf16_error, _ = float8_rounding.measure(exact, float8_rounding.rounded(exact, "bf16"))
    assert bf16_error < float8_rounding.measure(exact, nearest)[0] / 5
    assert float8_rounding.main(["--vocab", "256", "--rows", "4"]) == 0
