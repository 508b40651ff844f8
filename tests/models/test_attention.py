"""Packed self-attention: the SDPA path against a float64 reference, the short CUDA kernel
against the SDPA path (GPU only), kernel choice and the FLOP formula."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from neurodecode.models.attention import (
    MAX_SHORT_TOKENS,
    sdpa_attention,
    self_attention,
    short_kernel_applies,
    short_kernel_fits,
)
from neurodecode.models.blocks import MultiHeadSelfAttention
from neurodecode.models.masked_autoencoder import MaskedAutoencoder
from neurodecode.models.patch_conformer import PatchConformer, stream_dtype


def reference_attention(qkv: torch.Tensor, n_heads: int, key_mask=None) -> torch.Tensor:
    """Softmax attention written out in float64, one head at a time."""
    qkv = qkv.double()
    batch, n_tokens, width = qkv.shape
    dim = width // 3
    head_dim = dim // n_heads
    q, k, v = qkv.split(dim, dim=-1)
    heads = []
    for h in range(n_heads):
        cols = slice(h * head_dim, (h + 1) * head_dim)
        scores = q[..., cols] @ k[..., cols].transpose(1, 2) / head_dim**0.5
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v[..., cols])
    return torch.cat(heads, dim=-1)


def random_mask(batch: int, n_tokens: int, generator: torch.Generator) -> torch.Tensor:
    mask = torch.rand(batch, n_tokens, generator=generator) > 0.3
    mask[:, 0] = True  # every row keeps a key
    return mask


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_path_matches_the_written_out_reference(masked):
    generator = torch.Generator().manual_seed(0)
    qkv = torch.randn(5, 9, 3 * 24, generator=generator)
    mask = random_mask(5, 9, generator) if masked else None
    out = sdpa_attention(qkv, 3, mask)
    assert out.shape == (5, 9, 24)
    torch.testing.assert_close(
        out.double(), reference_attention(qkv, 3, mask), rtol=1e-5, atol=1e-5
    )


def test_short_kernel_takes_only_what_it_computes_exactly():
    bf16 = torch.bfloat16
    assert short_kernel_fits("cuda", bf16, (8, 32, 3 * 512), 8)
    assert short_kernel_fits("cuda", torch.float16, (8, MAX_SHORT_TOKENS, 3 * 64), 4)
    assert not short_kernel_fits("cpu", bf16, (8, 32, 3 * 512), 8)
    assert not short_kernel_fits("cuda", torch.float32, (8, 32, 3 * 512), 8)
    assert not short_kernel_fits("cuda", bf16, (8, MAX_SHORT_TOKENS + 1, 3 * 512), 8)
    assert not short_kernel_fits("cuda", bf16, (8, 32, 3 * 48), 1)  # head size 48
    assert not short_kernel_fits("cuda", bf16, (8, 32, 150), 3)  # 150 = 3 * 50: no exact split
    assert not short_kernel_fits("cuda", bf16, (2**20, 64, 3 * 512), 8)  # offsets over 32 bits
    assert not short_kernel_applies(torch.randn(2, 16, 3 * 64, dtype=bf16), 1)  # on CPU


def test_unknown_kernel_names_are_refused():
    with pytest.raises(ValueError, match="attention kernel"):
        MultiHeadSelfAttention(16, 2, kernel="flash3")
    with pytest.raises(ValueError, match="attention kernel"):
        self_attention(torch.randn(1, 4, 48), 2, kernel="flash3")


def test_attention_kernel_is_recorded_and_shared_with_the_decoder():
    encoder = PatchConformer(3, 1, 128, 64.0, patch_s=0.25, dim=16, depth=1, n_heads=2,
                             attention_kernel="sdpa")  # fmt: skip
    assert encoder.config_dict()["attention_kernel"] == "sdpa"
    mae = MaskedAutoencoder(encoder)
    kernels = {m.kernel for m in mae.modules() if isinstance(m, MultiHeadSelfAttention)}
    assert kernels == {"sdpa"}


def test_residual_stream_is_bf16_only_under_bf16_autocast():
    tokens = torch.randn(2, 3)
    assert stream_dtype(tokens).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert stream_dtype(tokens).dtype == torch.bfloat16


@pytest.mark.gpu
@pytest.mark.parametrize("n_tokens", [7, 32, 64])
@pytest.mark.parametrize("head_dim", [16, 32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("masked", [False, True])
def test_short_kernel_matches_sdpa_forward_and_backward(n_tokens, head_dim, dtype, masked):
    generator = torch.Generator().manual_seed(n_tokens + head_dim)
    n_heads, batch = 4, 96
    qkv = torch.randn(batch, n_tokens, 3 * n_heads * head_dim, generator=generator)
    mask = random_mask(batch, n_tokens, generator) if masked else None
    grad = torch.randn(batch, n_tokens, n_heads * head_dim, generator=generator)
    qkv, grad = qkv.cuda().to(dtype), grad.cuda().to(dtype)
    mask = None if mask is None else mask.cuda()
    assert short_kernel_applies(qkv, n_heads)

    results = {}
    for kernel in ("auto", "sdpa"):
        leaf = qkv.clone().requires_grad_(True)
        out = self_attention(leaf, n_heads, mask, kernel=kernel)
        out.backward(grad)
        results[kernel] = (out.float(), leaf.grad.float())
    expected = reference_attention(qkv.float(), n_heads, mask)
    for got, want in [(results["auto"][0], expected), (results["auto"][1], results["sdpa"][1])]:
        assert torch.isfinite(got).all()
        error = (got.double() - want.double()).norm() / want.double().norm()
        assert error < 1e-2, f"relative error {error:.2e}"
    sdpa_error = (results["sdpa"][0].double() - expected).norm() / expected.norm()
    kernel_error = (results["auto"][0].double() - expected).norm() / expected.norm()
    assert kernel_error <= 2 * sdpa_error + 1e-3  # as close to float64 as PyTorch's kernel


@pytest.mark.gpu
def test_short_kernel_gives_zero_for_a_query_without_keys_and_works_on_another_layout():
    qkv = torch.randn(4, 16, 3 * 64, device="cuda", dtype=torch.bfloat16)
    mask = torch.ones(4, 16, dtype=torch.bool, device="cuda")
    mask[1] = False  # nothing to attend to in sequence 1
    leaf = qkv.clone().requires_grad_(True)
    out = self_attention(leaf, 2, mask)
    out.sum().backward()
    assert (out[1] == 0).all() and (leaf.grad[1] == 0).all()
    assert torch.isfinite(out).all() and torch.isfinite(leaf.grad).all()
    strided = torch.randn(16, 4, 3 * 64, device="cuda", dtype=torch.bfloat16).transpose(0, 1)
    torch.testing.assert_close(
        self_attention(strided, 2), self_attention(strided, 2, kernel="sdpa"), rtol=2e-2, atol=2e-2
    )


@pytest.mark.gpu
def test_short_kernel_compiles_and_counts_model_flops():
    batch, n_tokens, dim = 64, 32, 128
    qkv = torch.randn(batch, n_tokens, 3 * dim, device="cuda", dtype=torch.bfloat16,
                      requires_grad=True)  # fmt: skip
    counts = {}
    for kernel in ("auto", "sdpa"):
        counter = FlopCounterMode(display=False)
        with counter:
            self_attention(qkv, 2, kernel=kernel).sum().backward()
        counts[kernel] = counter.get_total_flops()
    forward = 2 * 2 * batch * n_tokens * n_tokens * dim  # QKᵀ and PV
    assert counts["auto"] == 3 * forward  # backward: dV, dP, dQ, dK; recomputation not counted
    assert counts["sdpa"] >= counts["auto"]  # PyTorch's formula also counts the recomputed QKᵀ
    mask = torch.rand(batch, n_tokens, device="cuda") > 0.2
    mask[:, 0] = True

    def loss_and_grad(fn):
        leaf = qkv.detach().clone().requires_grad_(True)
        fn(leaf, mask).float().square().sum().backward()
        return leaf.grad

    compiled = torch.compile(lambda t, m: self_attention(t, 2, m), fullgraph=True)
    eager = loss_and_grad(lambda t, m: self_attention(t, 2, m, kernel="sdpa"))
    torch.testing.assert_close(loss_and_grad(compiled), eager, rtol=2e-2, atol=2e-2)


@pytest.mark.gpu
def test_energy_counter_counts_the_short_kernel_like_sdpa():
    from neurodecode.models.energy import OperationCounter

    x = torch.randn(8, 32, 64, device="cuda", dtype=torch.bfloat16)
    macs = {}
    for kernel in ("auto", "sdpa"):
        layer = MultiHeadSelfAttention(64, 4, kernel=kernel).cuda().bfloat16().eval()
        with torch.no_grad(), OperationCounter(layer) as counter:
            counter.start_batch(len(x))
            layer(x)
        macs[kernel] = sum(count.macs for count in counter.layers.values())
    assert macs["auto"] == macs["sdpa"] > 0
