"""One forward pass for several model calls at once: the in-process decode path for the llama architecture (SmolLM2).

Two savings over calling the transformers model once per call and step:
- **Fused weights.** Each layer's q, k and v projections are one matrix, and so are the MLP's gate and up
  projections: 121 oneDNN products per step instead of 211. The old Linear modules keep working on views of the
  fused matrices (no second copy), so the transformers forward gives the same values.
- **Ragged batches.** The tokens of several calls (a decode step of each, a prompt, the tokens a grammar forced) go
  through every Linear layer and norm as one matrix of rows, so the weights are read once for all of them; only
  attention is per call, each against its own KV cache. On 2 cores one pass over 211 matrices took 16.0 ms for one
  row and 21.7 ms for four (bench/README.md, session 25); four streams decoding together got 75.0 tokens/s against
  36.4 for one alone (bench_llm.py, session 26).

`StepBatcher` gathers the concurrent calls' passes: whichever call finds no pass running computes the passes queued
by then, for everyone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shopdesk.output import UserError


def supports(model: Any) -> bool:
    """Whether `model` is a transformers causal LM this module computes exactly: llama, no biases, SiLU MLP,
    default rotary embedding.
    """
    c = getattr(model, "config", None)
    if c is None or getattr(c, "model_type", None) != "llama":
        return False
    rope = (getattr(c, "rope_parameters", None) or {}).get("rope_type", "default")
    return (not c.attention_bias and not c.mlp_bias and c.hidden_act == "silu" and rope == "default"
            and getattr(c, "pretraining_tp", 1) == 1)


class FusedLlama:
    """The ragged forward pass of a llama model (adapter merged; fp32, or its Linear weights bfloat16 but lm_head's)
    on fused weights (see the module text).

    `linear(x, w)` multiplies rows by a weight matrix: `onednn_linear` by default, which
    agent.backends.onednn_linears also runs the model's own Linear layers with.
    """

    def __init__(self, model: Any, linear: Any = None):
        import torch

        if not supports(model):
            raise UserError("the fused decode step needs a llama model (no biases, SiLU, default rotary embedding)")
        self.model = model
        self.linear = linear or onednn_linear
        c = model.config
        self.heads = c.num_attention_heads
        self.kv_heads = c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.scale = self.head_dim ** -0.5
        self.layers = []
        with torch.no_grad():
            for layer in model.model.layers:
                attn, mlp = layer.self_attn, layer.mlp
                qkv = _fuse(attn.q_proj, attn.k_proj, attn.v_proj)
                gate_up = _fuse(mlp.gate_proj, mlp.up_proj)
                qkv, o, gate_up, down = (packed(w) if w.dtype == torch.bfloat16 else w
                                         for w in (qkv, attn.o_proj.weight, gate_up, mlp.down_proj.weight))
                self.layers.append((layer.input_layernorm, qkv, o, layer.post_attention_layernorm, gate_up, down))
        self.q_width = self.heads * self.head_dim
        self.kv_width = self.kv_heads * self.head_dim
        self.inter = model.config.intermediate_size

    def forward(self, feeds: Sequence[Sequence[int]], caches: Sequence[Any],
                keep: Sequence[Sequence[int]] | None = None) -> Any:
        """Compute each feed's tokens after what its cache holds (appending them to it); the next token's logits
        for each feed, [len(feeds), vocab]. With `keep`, the logits after each of the positions `keep[i]` of feed i
        (a draft being checked, `LocalChatModel._greedy`), all feeds' rows in order. Call under
        torch.inference_mode().
        """
        import torch
        import torch.nn.functional as F

        lengths = [len(f) for f in feeds]
        starts = [cache.get_seq_length() for cache in caches]
        ids = torch.tensor([t for f in feeds for t in f])
        positions = torch.cat([torch.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)])
        inner = self.model.model
        h = inner.embed_tokens(ids)  # [rows, hidden]
        cos, sin = inner.rotary_emb(h, positions[None])  # [1, rows, head_dim]
        cos, sin = cos[0], sin[0]
        masks = [None if n == 1 else torch.ones(n, s + n, dtype=torch.bool).tril(s)
                 for s, n in zip(starts, lengths, strict=True)]
        bounds = [(sum(lengths[:i]), lengths[i]) for i in range(len(feeds))]
        q_end, k_end = self.q_width, self.q_width + self.kv_width
        for index, (norm1, qkv_w, o_w, norm2, gate_up_w, down_w) in enumerate(self.layers):
            qkv = self.linear(norm1(h), qkv_w)
            q = _rotate(qkv[:, :q_end].view(-1, self.heads, self.head_dim).transpose(0, 1), cos, sin)
            k = _rotate(qkv[:, q_end:k_end].view(-1, self.kv_heads, self.head_dim).transpose(0, 1), cos, sin)
            v = qkv[:, k_end:].view(-1, self.kv_heads, self.head_dim).transpose(0, 1)
            outs = []
            for (at, n), cache, mask in zip(bounds, caches, masks, strict=True):
                keys, values = cache.update(k[None, :, at:at + n], v[None, :, at:at + n], index)
                o = F.scaled_dot_product_attention(q[None, :, at:at + n], keys, values, attn_mask=mask,
                                                   scale=self.scale, enable_gqa=True)
                outs.append(o[0].transpose(0, 1).reshape(n, self.q_width))
            h = h + self.linear(outs[0] if len(outs) == 1 else torch.cat(outs), o_w)
            gate_up = self.linear(norm2(h), gate_up_w)
            h = h + self.linear(F.silu(gate_up[:, :self.inter]) * gate_up[:, self.inter:], down_w)
        rows = [at + n - 1 for at, n in bounds] if keep is None else \
            [at + i for (at, _), kept in zip(bounds, keep, strict=True) for i in kept]
        return self.linear(inner.norm(h[torch.tensor(rows)]), self.model.lm_head.weight)


def onednn_linear(x: Any, w: Any, bias: Any = None) -> Any:
    """x @ w.T (+ bias) by oneDNN's inner product, the op torch's own compiler emits for CPU Linear layers.

    A bfloat16 `w` (Settings.local_weights `bf16-onednn`) multiplies `x` rounded to bfloat16, accumulating in fp32
    (oneDNN's avx512_core_bf16 kernels); the product comes back in `x`'s dtype, so everything between the products
    (the residual stream, norms, attention and the KV cache) stays fp32.
    """
    import torch

    if w.dtype == x.dtype:
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")
    bias = None if bias is None else bias.to(w.dtype)
    return torch.ops.mkldnn._linear_pointwise(x.to(w.dtype), w, bias, "none", [], "").to(x.dtype)


PACK_ROWS = 64  # the row count oneDNN lays packed weights out for; measured best of 1, 4 and 64 across 1-450 rows


def packed(w: Any) -> Any:
    """`w` (bfloat16) reordered once into oneDNN's blocked layout for its bf16 kernels, which the inner product would
    otherwise do on every call. On 2 cores (the 120 layer matrices of SmolLM2-135M, bf16; session 32): 16.6 -> 11.8
    ms for one row, 23.7 -> 10.8 ms for four, 270.6 -> 235.4 ms for 450, the same values. fp32 weights gained
    nothing consistent from it and stay as they are.
    """
    import torch

    return torch.ops.mkldnn._reorder_linear_weight(w, PACK_ROWS)


def _fuse(*linears: Any) -> Any:
    """One matrix holding the linears' weights one after another; each linear's weight becomes a view of its rows."""
    import torch

    fused = torch.cat([m.weight.detach() for m in linears])
    at = 0
    for m in linears:
        n = m.weight.shape[0]
        m.weight = torch.nn.Parameter(fused[at:at + n], requires_grad=False)
        at += n
    return fused


def _rotate(x: Any, cos: Any, sin: Any) -> Any:
    """The rotary embedding of x ([heads, rows, head_dim]) as transformers' apply_rotary_pos_emb computes it."""
    import torch

    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class _Pass:
    __slots__ = ("feed", "cache", "keep", "logits", "error", "done")

    def __init__(self, feed: Sequence[int], cache: Any, keep: Sequence[int] | None = None):
        self.feed, self.cache = feed, cache
        self.keep = [len(feed) - 1] if keep is None else list(keep)
        self.logits: Any = None
        self.error: BaseException | None = None
        self.done = False


class StepBatcher:
    """Runs the forward passes of concurrent model calls together (FusedLlama.forward over all of them).

    A call registers as a member for as long as it decodes (`member()`), and asks for each pass with `run(feed,
    cache)`. Whichever call finds no pass computing leads: it waits up to `gather_s` for every member to have
    asked (the others are between two steps: masking by the grammar, picking the token), then computes every pass
    queued, with all `threads`, and hands each its logits. A call alone never waits.

    Or one thread computes every pass (`serve()`, the engine process's main thread) and the calls only queue theirs:
    torch's OpenMP threads belong to the thread that starts a parallel region, and on 2 cores a decode whose passes
    were led by a fresh thread took 7.1 s for 96 tokens against 4.8-5.4 s on the main thread (session 27).
    """

    def __init__(self, step: FusedLlama, threads: int, gather_s: float = 0.003):
        self.step = step
        self.threads = threads
        self.gather_s = gather_s
        self._cond = threading.Condition()
        self._queue: list[_Pass] = []
        self._computing = False
        self._members = 0
        self._serving = False
        self.passes = 0  # batched passes computed
        self.rows = 0  # model calls' passes computed (rows / passes: calls per batch)
        self.seconds = 0.0  # spent computing passes

    @contextmanager
    def member(self) -> Iterator[None]:
        with self._cond:
            self._members += 1
        try:
            yield
        finally:
            with self._cond:
                self._members -= 1
                self._cond.notify_all()

    def others(self) -> bool:
        """Whether a call other than the caller (a member) is decoding now."""
        with self._cond:
            return self._members > 1

    def run(self, feed: Sequence[int], cache: Any, keep: Sequence[int] | None = None) -> Any:
        """The next token's logits after `feed` ([1, vocab]), `feed` appended to `cache`; with `keep`, the logits
        after each of those positions of `feed` ([len(keep), vocab]).
        """
        job = _Pass(feed, cache, keep)
        with self._cond:
            self._queue.append(job)
            self._cond.notify_all()
            while not job.done and (self._computing or self._serving):
                self._cond.wait()
            if not job.done:
                batch = self._gather()
        if not job.done:
            self._compute(batch)
        if job.error is not None:
            raise job.error
        return job.logits

    def serve(self, stop: threading.Event) -> None:
        """Compute every call's passes on this thread until `stop` is set; the calls then only queue theirs."""
        with self._cond:
            self._serving = True
        try:
            while not stop.is_set():
                with self._cond:
                    if not self._queue or self._computing:
                        self._cond.wait(0.2)
                        continue
                    batch = self._gather()
                with contextlib.suppress(Exception):  # handed to each call in the pass; the next one goes on
                    self._compute(batch)
        finally:
            with self._cond:
                self._serving = False
                self._cond.notify_all()

    def _gather(self) -> list[_Pass]:
        """Under the lock: become the one computing, wait up to gather_s for every member's pass, take the queue."""
        self._computing = True
        deadline = time.monotonic() + self.gather_s
        while len(self._queue) < self._members and (left := deadline - time.monotonic()) > 0:
            self._cond.wait(left)
        batch, self._queue = self._queue, []
        return batch

    def _compute(self, batch: list[_Pass]) -> None:
        import torch

        started = time.perf_counter()
        try:
            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            with torch.inference_mode():
                logits = self.step.forward([j.feed for j in batch], [j.cache for j in batch],
                                           [j.keep for j in batch])
            at = 0
            for j in batch:
                j.logits = logits[at:at + len(j.keep)]
                at += len(j.keep)
        except BaseException as exc:  # every call in the pass fails with it; none of their caches is trusted
            for j in batch:
                j.error = exc
            raise
        finally:
            with self._cond:
                for j in batch:
                    j.done = True
                self.passes += 1
                self.rows += len(batch)
                self.seconds += time.perf_counter() - started
                self._computing = False
                self._cond.notify_all()
