"""Triton kernels of :mod:`neurodecode.models.attention` (imported only where Triton is).

One program per (sequence, head) holds the whole sequence (at most ``BLOCK`` tokens) in
registers. The forward reads queries, keys and values from the packed ``qkv`` rows and
writes the output and the log-sum-exp of each query; the backward recomputes the
probabilities from them and writes the gradient of ``qkv`` in the same packed layout.
"""

import triton
import triton.language as tl


@triton.jit
def load_head(base, rows, cols, row_stride, n_tokens):
    return tl.load(
        base + rows[:, None] * row_stride + cols[None, :],
        mask=rows[:, None] < n_tokens,
        other=0.0,
    )


@triton.jit
def scores(q, k, rows, mask_ptr, n_tokens, scale, HAS_MASK: tl.constexpr):
    s = tl.dot(q, tl.trans(k)) * scale
    keep = rows < n_tokens
    if HAS_MASK:
        keep = keep & (tl.load(mask_ptr + rows, mask=rows < n_tokens, other=0) != 0)
    return tl.where(keep[None, :], s, float("-inf"))


@triton.jit
def forward(qkv, out, lse, key_mask, n_tokens, n_heads, dim, scale,
            HAS_MASK: tl.constexpr, BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr):  # fmt: skip
    program = tl.program_id(0)
    seq, head = (program // n_heads).to(tl.int64), program % n_heads  # 64-bit offsets
    rows = tl.arange(0, BLOCK)
    cols = tl.arange(0, HEAD_DIM)
    base = qkv + seq * n_tokens * 3 * dim + head * HEAD_DIM
    q = load_head(base, rows, cols, 3 * dim, n_tokens)
    k = load_head(base + dim, rows, cols, 3 * dim, n_tokens)
    v = load_head(base + 2 * dim, rows, cols, 3 * dim, n_tokens)
    s = scores(q, k, rows, key_mask + seq * n_tokens, n_tokens, scale, HAS_MASK)
    peak = tl.max(s, 1)
    peak = tl.where(peak == float("-inf"), 0.0, peak)  # a row with no key: output 0
    p = tl.exp(s - peak[:, None])
    total = tl.sum(p, 1)
    total = tl.where(total == 0.0, 1.0, total)
    o = tl.dot(p.to(v.dtype), v) / total[:, None]
    in_seq = rows[:, None] < n_tokens
    target = out + seq * n_tokens * dim + head * HEAD_DIM
    tl.store(target + rows[:, None] * dim + cols[None, :], o.to(v.dtype), mask=in_seq)
    tl.store(lse + program * n_tokens + rows, peak + tl.log(total), mask=rows < n_tokens)


@triton.jit
def backward(qkv, out, grad_out, lse, key_mask, grad_qkv, n_tokens, n_heads, dim, scale,
             HAS_MASK: tl.constexpr, BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr):  # fmt: skip
    program = tl.program_id(0)
    seq, head = (program // n_heads).to(tl.int64), program % n_heads  # 64-bit offsets
    rows = tl.arange(0, BLOCK)
    cols = tl.arange(0, HEAD_DIM)
    offset = seq * n_tokens * 3 * dim + head * HEAD_DIM
    q = load_head(qkv + offset, rows, cols, 3 * dim, n_tokens)
    k = load_head(qkv + offset + dim, rows, cols, 3 * dim, n_tokens)
    v = load_head(qkv + offset + 2 * dim, rows, cols, 3 * dim, n_tokens)
    head_out = seq * n_tokens * dim + head * HEAD_DIM
    o = load_head(out + head_out, rows, cols, dim, n_tokens)
    do = load_head(grad_out + head_out, rows, cols, dim, n_tokens)
    row_lse = tl.load(lse + program * n_tokens + rows, mask=rows < n_tokens, other=0.0)
    s = scores(q, k, rows, key_mask + seq * n_tokens, n_tokens, scale, HAS_MASK)
    p = tl.exp(s - row_lse[:, None])
    p = tl.where(rows[:, None] < n_tokens, p, 0.0)
    dv = tl.dot(tl.trans(p.to(do.dtype)), do)
    dp = tl.dot(do, tl.trans(v))
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    ds = (p * (dp - delta[:, None]) * scale).to(q.dtype)
    dq = tl.dot(ds, k)
    dk = tl.dot(tl.trans(ds), q)
    in_seq = rows[:, None] < n_tokens
    target = grad_qkv + offset + rows[:, None] * 3 * dim + cols[None, :]
    tl.store(target, dq.to(q.dtype), mask=in_seq)
    tl.store(target + dim, dk.to(q.dtype), mask=in_seq)
    tl.store(target + 2 * dim, dv.to(q.dtype), mask=in_seq)
