"""Float8 matmuls for the transformer blocks' linear layers (opt-in: `train.float8`).

Hopper and Ada GPUs multiply float8 at twice their bf16 rate (by NVIDIA's datasheets). Each
linear layer casts its input and weight to float8 e4m3 and, in the backward, its output
gradient to e5m2 (more range, less precision, as gradients need), each with one scale per
tensor from its absolute maximum ("dynamic tensorwise" scaling), and multiplies with
`torch._scaled_mm`. Weights stay in their own dtype (fp32 master weights); the optimizer
never sees float8. Compiled, the max, scale and cast fuse into the kernels around each matmul.
Those passes cost the same per element whatever the layer's width while the multiply's saving
grows with it: on an H200, +5.6% tokens/s at 350M (d=1024), nothing at 124M (d=768).

`_scaled_mm` on CUDA takes its first operand row-major and its second column-major, with both
dimensions multiples of 16; `convert_to_float8` leaves any layer whose shape does not fit.
On CPU (tests, smoke runs) the same float8 operands are multiplied upcast to fp32
(`scaled_mm`).
The embedding and MoE routers stay in bf16; the output projection (LM head) too unless
`train.float8_head` asks for it (`Transformer.float8_head`). Then the projection and the loss
are one function, `float8_head_loss`, and the logits' gradient needs no absolute maximum:
softmax minus one-hot lies in [-1, 1] whatever the logits, so its scale is known in advance
and the cast fuses into the one pass that computes it.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from training.loss import cross_entropy_parts, softmax_minus_one_hot

E4M3 = torch.float8_e4m3fn  # activations and weights
E5M2 = torch.float8_e5m2  # gradients
# softmax minus one-hot times this fits e5m2 (largest 57,344) with room for rounding up, and
# keeps probabilities down to 2^-31 (e5m2's smallest, 2^-16, over 2^15)
LOGITS_GRADIENT_SCALE = 2.0**15
DROPPED_BITS = 21  # fp32's mantissa bits that e5m2 lacks (23 - 2)


def to_float8(x: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """x scaled so its absolute maximum is dtype's largest value, in dtype; and the inverse
    scale (fp32 scalar) that `_scaled_mm` multiplies back."""
    largest = torch.finfo(dtype).max
    amax = x.detach().abs().amax().float().clamp(min=1e-12)  # all-zero x: scale stays finite
    scale = largest / amax
    scaled = (x.float() * scale).clamp(-largest, largest).to(dtype)
    return scaled, scale.reciprocal()


def rounding_seed(seed: int, rank: int, step: int) -> int:
    """The RNG seed for one step's stochastic rounding on one rank: data-parallel ranks draw
    their own noise (with one stream the ranks' rounding errors are alike, and averaging the
    gradients does not shrink them), and a resumed run draws what the whole one did."""
    digest = hashlib.sha256(f"float8-rounding:{seed}:{rank}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def round_stochastically(x: torch.Tensor) -> torch.Tensor:
    """x in e5m2, rounded up or down at random with the probability of the remainder, so its
    expected value is x. Rounding to nearest shifts sums of many small values (the logits'
    gradient's tail: benchmarks/float8_rounding.py). Random bits added below e5m2's 2 of fp32's
    23 mantissa bits, then cut: the sign-magnitude layout makes it symmetric, and a carry moves
    into the exponent as rounding up should (exact for e5m2's normal range)."""
    bits = x.float().view(torch.int32)
    noise = torch.randint_like(bits, 0, 1 << DROPPED_BITS)
    return ((bits + noise) & ~((1 << DROPPED_BITS) - 1)).view(torch.float32).to(E5M2)


def column_major(x: torch.Tensor) -> torch.Tensor:
    """The same (rows, cols) matrix stored column by column: `_scaled_mm`'s second operand."""
    return x.t().contiguous().t()


def autocast_input(x: torch.Tensor) -> torch.Tensor:
    """x in the autocast dtype when autocast is on, so outputs get the dtype it would give."""
    if torch.is_autocast_enabled(x.device.type):
        return x.to(torch.get_autocast_dtype(x.device.type))
    return x


def scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_inverse: torch.Tensor,
    b_inverse: torch.Tensor,
    out_dtype: torch.dtype,
    use_fast_accum: bool = False,
) -> torch.Tensor:
    """(a @ b) * a_inverse * b_inverse in out_dtype, from float8 operands: `_scaled_mm`'s
    kernels on CUDA. Elsewhere the operands are upcast to fp32, which holds every float8 value
    and product exactly: torch's CPU `_scaled_mm` is a reference loop, on some CPUs 50 times
    slower than that (a Sapphire Rapids VM: 0.7 s against 17 ms at 256 x 256 x 256) for sums
    that differ in their last bits. Autocast is off for it, as `_scaled_mm` ignores autocast."""
    if a.is_cuda:
        return torch._scaled_mm(
            a, b, a_inverse, b_inverse, out_dtype=out_dtype, use_fast_accum=use_fast_accum
        )
    with torch.autocast(a.device.type, enabled=False):
        return ((a.float() @ b.float()) * (a_inverse * b_inverse)).to(out_dtype)


def float8_product(x: torch.Tensor, weight: torch.Tensor):
    """x @ weight.T in x's dtype for contiguous (N, in) rows x and (out, in) weight, both cast
    to e4m3; and what the backward needs: (x8, x_inverse, w8, w_inverse)."""
    x8, x_inverse = to_float8(x, E4M3)  # contiguous rows: _scaled_mm's row-major first operand
    w8, w_inverse = to_float8(weight, E4M3)
    # w8 is (out, in) row-major, so w8.t() is (in, out) column-major
    out = scaled_mm(x8, w8.t(), x_inverse, w_inverse, x.dtype, use_fast_accum=True)
    return out, (x8, x_inverse, w8, w_inverse)


def float8_gradients(g8, g_inverse, saved, x_dtype: torch.dtype, w_dtype: torch.dtype):
    """The input's and the weight's gradients of `float8_product` from the output's gradient
    g8 (N, out) in float8 with its inverse scale; `saved` is what the forward returned."""
    x8, x_inverse, w8, w_inverse = saved
    # full-precision accumulation (no fast accumulation): gradients sum over many rows
    grad_x = scaled_mm(g8, column_major(w8), g_inverse, w_inverse, x_dtype)
    grad_w = scaled_mm(g8.t().contiguous(), column_major(x8), g_inverse, x_inverse, w_dtype)
    return grad_x, grad_w


class Float8Matmul(torch.autograd.Function):
    """x @ weight.T with float8 operands, forward and backward; outputs in x's dtype."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        out, saved = float8_product(x.reshape(-1, x.shape[-1]).contiguous(), weight)
        ctx.save_for_backward(*saved)  # float8: half bf16's memory
        ctx.shapes = (x.shape, x.dtype, weight.dtype)
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x_shape, x_dtype, w_dtype = ctx.shapes
        g8, g_inverse = to_float8(grad.reshape(-1, grad.shape[-1]).contiguous(), E5M2)
        grad_x, grad_w = float8_gradients(g8, g_inverse, ctx.saved_tensors, x_dtype, w_dtype)
        return grad_x.view(x_shape), grad_w


def float8_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.linear(x, weight) without bias, multiplied in float8. Under autocast x is first cast
    to the autocast dtype, so the output's dtype is what autocast would give. No rows (a
    mixture-of-experts expert no token chose) have no maximum to scale by: the plain product
    gives their empty output and the weight's zero gradient."""
    x = autocast_input(x)
    if not x.numel():
        return x @ weight.to(x.dtype).t()
    return Float8Matmul.apply(x, weight)


class Float8HeadLoss(torch.autograd.Function):
    """Mean cross-entropy of hidden @ weight.T against targets, the projection in float8 both
    ways. Forward as `Float8Matmul` then `CrossEntropy`; backward, the logits' gradient goes
    straight to e5m2 with the fixed `LOGITS_GRADIENT_SCALE`, in the pass that computes it,
    rounded to nearest or stochastically."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, stochastic: bool):
        logits, saved = float8_product(hidden, weight)
        loss, logsumexp = cross_entropy_parts(logits, targets)
        ctx.save_for_backward(*saved, logits, targets, logsumexp)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        ctx.stochastic = stochastic
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        *saved, logits, targets, logsumexp = ctx.saved_tensors
        gradient = softmax_minus_one_hot(logits, targets, logsumexp).mul_(LOGITS_GRADIENT_SCALE)
        g8 = round_stochastically(gradient) if ctx.stochastic else gradient.to(E5M2)
        g_inverse = grad.float() / (logits.shape[0] * LOGITS_GRADIENT_SCALE)  # and the mean
        return *float8_gradients(g8, g_inverse, saved, *ctx.dtypes), None, None


def float8_head_loss(hidden, weight, targets, rounding: str = "nearest") -> torch.Tensor:
    """Mean next-token cross-entropy of (B, T, d) hidden states projected by (V, d) weight
    against (B, T) targets: `next_token_loss(F.linear(hidden, weight), targets)` in float8;
    `rounding` (nearest, stochastic) of the logits' gradient to e5m2."""
    rows = autocast_input(hidden).reshape(-1, hidden.shape[-1]).contiguous()
    return Float8HeadLoss.apply(rows, weight, targets.reshape(-1), rounding == "stochastic")


class Float8Linear(nn.Linear):
    """nn.Linear (no bias) whose matmul runs in float8: same parameter, same state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return float8_linear(x, self.weight)


def fits(linear: nn.Linear) -> bool:
    return linear.bias is None and linear.in_features % 16 == 0 and linear.out_features % 16 == 0


def convert_to_float8(blocks: nn.Module) -> int:
    """Turn the linear layers under `blocks` into Float8Linear in place (the class changes,
    the parameter and its state-dict key stay); returns how many. MoE routers (few outputs,
    and they decide the routing) and layers whose shape does not fit stay as they are."""
    converted = 0
    for name, module in blocks.named_modules():
        if type(module) is nn.Linear and fits(module) and not name.endswith("router"):
            module.__class__ = Float8Linear
            converted += 1
    return converted
