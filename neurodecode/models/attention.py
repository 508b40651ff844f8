"""Multi-head self-attention from packed ``qkv`` projections, with a kernel for short sequences.

The factorised layers of :mod:`neurodecode.models.patch_conformer` attend over very short
sequences (32 time patches, 64 channels) in very large batches (every channel of every
window, every patch of every window). PyTorch's fused attention kernels tile sequences in
blocks of 64-128 queries and run several passes in the backward, so there they run at a
fraction of memory bandwidth (on an H100, 1.6-2.5 ms forward + backward where reading and
writing the tensors takes 0.36 ms; ``docs/benchmarks.md``). :func:`self_attention` therefore
takes, on CUDA, a Triton kernel that holds one whole (sequence, head) in registers: one
program reads its queries, keys and values straight from the packed ``qkv`` projection,
writes the output in the ``(batch, n_tokens, dim)`` layout the output projection reads, and
the backward writes the gradient of ``qkv`` in place of three separate ones. Everywhere
else (CPU, sequences over :data:`MAX_SHORT_TOKENS`, float32, attention dropout) it calls
:func:`torch.nn.functional.scaled_dot_product_attention`. Both compute the same function,
except for a query with no key to attend to, which gets 0 from the kernel and NaN from
PyTorch's kernels (neurodecode's encoders never leave a query without a key).

The kernel is registered as the custom operator ``neurodecode::short_attention`` (with its
backward and a FLOP formula), so ``torch.compile`` and ``FlopCounterMode`` treat it like any
other operator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

KERNELS = ("auto", "sdpa")
MAX_SHORT_TOKENS = 64  # longest sequence the short kernel holds in registers
_HEAD_DIMS = (16, 32, 64, 128)


def self_attention(
    qkv: Tensor,
    n_heads: int,
    key_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    kernel: str = "auto",
) -> Tensor:
    """Attention of packed projections: ``(batch, n_tokens, 3 * dim)`` → ``(batch, n_tokens, dim)``.

    Parameters
    ----------
    qkv : Tensor
        Queries, keys and values concatenated along the last axis, each split into
        ``n_heads`` heads of ``dim // n_heads``.
    n_heads : int
        Attention heads.
    key_mask : Tensor, optional
        ``(batch, n_tokens)`` bool, true for tokens that may be attended to.
    dropout_p : float
        Attention dropout (training only; the caller passes 0 in evaluation).
    kernel : {"auto", "sdpa"}
        ``auto``: the short-sequence Triton kernel where it applies, else PyTorch's
        ``scaled_dot_product_attention``; ``sdpa``: always the latter.
    """
    check_kernel(kernel)
    boolean_mask = key_mask is None or key_mask.dtype == torch.bool
    if (
        kernel == "auto"
        and dropout_p == 0.0
        and boolean_mask
        and short_kernel_applies(qkv, n_heads)
    ):
        mask = None if key_mask is None else key_mask.to(torch.uint8)
        return torch.ops.neurodecode.short_attention(qkv, n_heads, mask)[0]
    return sdpa_attention(qkv, n_heads, key_mask, dropout_p)


def check_kernel(kernel: str) -> str:
    """Return ``kernel`` if it names one of :data:`KERNELS`, else raise ``ValueError``."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown attention kernel {kernel!r}; expected one of {KERNELS}")
    return kernel


def sdpa_attention(
    qkv: Tensor, n_heads: int, key_mask: Tensor | None = None, dropout_p: float = 0.0
) -> Tensor:
    """:func:`self_attention` through ``scaled_dot_product_attention`` (any device)."""
    batch, n_tokens, width = qkv.shape
    dim = width // 3
    q, k, v = qkv.reshape(batch, n_tokens, 3, n_heads, dim // n_heads).permute(2, 0, 3, 1, 4)
    attn_mask = None if key_mask is None else key_mask[:, None, None, :]
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    return y.transpose(1, 2).reshape(batch, n_tokens, dim)


def short_kernel_applies(qkv: Tensor, n_heads: int) -> bool:
    """Whether the Triton kernel takes ``qkv`` (see :func:`short_kernel_fits`) on this machine."""
    return short_kernel_fits(qkv.device.type, qkv.dtype, qkv.shape, n_heads) and _triton_available()


def short_kernel_fits(
    device_type: str, dtype: torch.dtype, shape: Sequence[int], n_heads: int
) -> bool:
    """Whether ``qkv`` of this kind suits the kernel: CUDA, half precision, at most
    :data:`MAX_SHORT_TOKENS` tokens, a head size of 16-128 dividing the width exactly, and
    offsets that fit in 32 bits."""
    batch, n_tokens, width = shape
    head_dim = width // 3 // n_heads
    return (
        device_type == "cuda"
        and dtype in (torch.bfloat16, torch.float16)
        and n_tokens <= MAX_SHORT_TOKENS
        and head_dim in _HEAD_DIMS
        and width == 3 * n_heads * head_dim
        and batch * n_tokens * width < 2**31
    )


@functools.cache
def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _block(n_tokens: int) -> int:
    """Power-of-two row block holding the whole sequence (Triton's dot needs at least 16)."""
    return max(16, 1 << (n_tokens - 1).bit_length())


def _kernels():
    """The forward and backward Triton kernels (imported on first use: Triton is CUDA-only)."""
    from neurodecode.models.short_attention_kernels import backward, forward

    return forward, backward


def _launch_options(qkv: Tensor, n_heads: int, key_mask: Tensor | None) -> dict:
    n_tokens, dim = qkv.shape[1], qkv.shape[2] // 3
    return {
        "n_tokens": n_tokens,
        "n_heads": n_heads,
        "dim": dim,
        "scale": 1.0 / math.sqrt(dim // n_heads),
        "HAS_MASK": key_mask is not None,
        "BLOCK": _block(n_tokens),
        "HEAD_DIM": dim // n_heads,
        "num_warps": 4,
    }


@torch.library.custom_op("neurodecode::short_attention", mutates_args=(), device_types="cuda")
def _short_attention(qkv: Tensor, n_heads: int, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    qkv = qkv.contiguous()
    key_mask = None if key_mask is None else key_mask.contiguous()
    batch, n_tokens, width = qkv.shape
    out = qkv.new_empty(batch, n_tokens, width // 3)
    lse = qkv.new_empty(batch, n_heads, n_tokens, dtype=torch.float32)
    mask = key_mask if key_mask is not None else lse  # never read without HAS_MASK
    forward, _ = _kernels()
    with torch.cuda.device(qkv.device):  # Triton launches on the current device
        forward[(batch * n_heads,)](qkv, out, lse, mask, **_launch_options(qkv, n_heads, key_mask))
    return out, lse


@_short_attention.register_fake
def _(qkv: Tensor, n_heads: int, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    batch, n_tokens, width = qkv.shape
    lse = qkv.new_empty(batch, n_heads, n_tokens, dtype=torch.float32)
    return qkv.new_empty(batch, n_tokens, width // 3), lse


@torch.library.custom_op(
    "neurodecode::short_attention_backward", mutates_args=(), device_types="cuda"
)
def _short_attention_backward(
    grad_out: Tensor, qkv: Tensor, out: Tensor, lse: Tensor, n_heads: int, key_mask: Tensor | None
) -> Tensor:
    qkv, out, lse = qkv.contiguous(), out.contiguous(), lse.contiguous()
    key_mask = None if key_mask is None else key_mask.contiguous()
    grad_qkv = torch.empty(qkv.shape, dtype=qkv.dtype, device=qkv.device)
    mask = key_mask if key_mask is not None else lse
    _, backward = _kernels()
    with torch.cuda.device(qkv.device):
        backward[(qkv.shape[0] * n_heads,)](
            qkv, out, grad_out.contiguous(), lse, mask, grad_qkv,
            **_launch_options(qkv, n_heads, key_mask),
        )  # fmt: skip
    return grad_qkv


@_short_attention_backward.register_fake
def _(
    grad_out: Tensor, qkv: Tensor, out: Tensor, lse: Tensor, n_heads: int, key_mask: Tensor | None
) -> Tensor:
    return torch.empty(qkv.shape, dtype=qkv.dtype, device=qkv.device)


def _setup_context(ctx, inputs, output) -> None:
    qkv, n_heads, key_mask = inputs
    out, lse = output
    ctx.n_heads = n_heads
    ctx.save_for_backward(qkv, out, lse, key_mask)


def _backward(ctx, grad_out: Tensor, grad_lse: Tensor):
    qkv, out, lse, key_mask = ctx.saved_tensors
    grad_qkv = torch.ops.neurodecode.short_attention_backward(
        grad_out, qkv, out, lse, ctx.n_heads, key_mask
    )
    return grad_qkv, None, None


_short_attention.register_autograd(_backward, setup_context=_setup_context)


def _attention_flops(batch: int, n_tokens: int, width: int) -> int:
    """``QKᵀ`` and ``PV`` of every head: 2 products of ``n_tokens² · dim`` multiply-adds."""
    return 2 * 2 * batch * n_tokens * n_tokens * (width // 3)


def _register_flop_formulas() -> None:
    from torch.utils.flop_counter import register_flop_formula

    @register_flop_formula(torch.ops.neurodecode.short_attention)
    def _(qkv_shape, *args, **kwargs) -> int:
        return _attention_flops(*qkv_shape)

    @register_flop_formula(torch.ops.neurodecode.short_attention_backward)
    def _(grad_out_shape, qkv_shape, *args, **kwargs) -> int:
        return 2 * _attention_flops(*qkv_shape)  # dV, dP, dQ and dK products


_register_flop_formulas()
SHORT_ATTENTION = torch.ops.neurodecode.short_attention  # the operator, for op counters
