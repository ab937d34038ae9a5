"""Chat model backends of the agent: in-process transformers (+ peft adapter), vLLM over its OpenAI API, or scripted.

Both real backends render agent/chat_template.jinja, decode under the same tool-call grammar (agent/grammar.py:
xgrammar's logits processor here, structured outputs on the vLLM server) and read `<tool_call>{json}</tool_call>`
the same way (agent/parsing.py here; vLLM's hermes tool parser on the server). Per-turn enums go in with the tools:

    bound = model.bind_tools(tools, enums={"order_id": ["#W2611340"]}, tool_choice=None)   # either backend
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import Field

from agent import llama_step
from agent.grammar import CallGrammars, call_structural_tag, constrained_tools
from agent.parsing import parse_tool_calls, safe_prefix_len
from shopdesk.gguf_export import merged_gguf
from shopdesk.models import resolve_adapter, smollm_gguf
from shopdesk.output import UserError
from shopdesk.settings import INT8_KEEP_FP32, Settings

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("chat_template.jinja")


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the dicts the chat template expects (tool calls with dict arguments)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else json.dumps(m.content)
        if isinstance(m, SystemMessage):
            out.append({"role": "system", "content": content})
        elif isinstance(m, ToolMessage):
            out.append({"role": "tool", "content": content})
        elif isinstance(m, AIMessage):
            d: dict[str, Any] = {"role": "assistant", "content": content}
            if m.tool_calls:
                d["tool_calls"] = [{"type": "function", "function": {"name": tc["name"], "arguments": tc["args"]}}
                                   for tc in m.tool_calls]
            out.append(d)
        else:
            out.append({"role": "user", "content": content})
    return out


class PrefixCache:
    """The KV caches of recent model calls, reused by their longest common prefix with the next prompt.

    Every call of a role starts with the same system turn and tools, and a turn's second call starts with its first
    call's prompt and tool call, so most of a prompt was already computed. Entries are keyed by token ids (not
    text), so a reused prefix is exactly what the model would compute again. Least recently used entries go first.
    Reuse does not change the output: greedy decoding over the same ids (tests/agent/test_prefix_cache.py).
    """

    def __init__(self, capacity: int = 8, min_tokens: int = 16):
        self.capacity = capacity
        self.min_tokens = min_tokens
        self._entries: OrderedDict[int, tuple[Any, Any]] = OrderedDict()  # id -> (token ids tensor, cache)
        self._next = 0
        self.reused_tokens = 0
        self.computed_tokens = 0

    def take(self, ids) -> tuple[Any, int]:
        """A private copy of the best cache for these prompt ids (cropped to the shared prefix), and its length;
        (None, 0) when no entry shares at least `min_tokens`. One token is always left to compute.
        """
        best_key, best = None, 0
        for key, (known, _) in self._entries.items():
            n = _common_prefix(known, ids)
            if n > best:
                best_key, best = key, n
        best = min(best, len(ids) - 1)
        if best_key is None or best < self.min_tokens:
            self.computed_tokens += len(ids)
            return None, 0
        self._entries.move_to_end(best_key)
        cache = copy.deepcopy(self._entries[best_key][1])
        if cache.get_seq_length() > best:
            cache.crop(best - cache.get_seq_length())  # transformers crops by a negative count
        self.reused_tokens += best
        self.computed_tokens += len(ids) - best
        return cache, best

    def put(self, sequence, cache) -> None:
        """Remember `cache`, which holds the keys and values of the first `cache.get_seq_length()` ids of
        `sequence` (generate() leaves the last sampled token out).
        """
        n = cache.get_seq_length()
        if n < self.min_tokens:
            return
        self._entries[self._next] = (sequence[:n].clone(), cache)
        self._next += 1
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class LlamaStates:
    """The llama.cpp runtime's prefix cache: its context holds the KV cache of one sequence (the last one decoded),
    so the KV caches of recent sequences are kept as llama.cpp state copies (keys and values only; about 23 KB per
    token for SmolLM2), keyed by their token ids, and the one sharing the longest prefix with a new prompt is put
    back into the context when it shares more than the context itself. Least recently used entries go first.
    """

    def __init__(self, capacity: int = 8, min_tokens: int = 16):
        self.capacity = capacity
        self.min_tokens = min_tokens
        self._entries: OrderedDict[int, tuple[list[int], bytes]] = OrderedDict()
        self._next = 0

    def restore(self, llm: Any, seq: list[int]) -> int:
        """Make the context hold the longest known prefix of `seq`; how many tokens of `seq` it now holds."""
        import ctypes

        from llama_cpp import llama_cpp as C

        live = _common_prefix_list(llm.input_ids[: llm.n_tokens].tolist(), seq)
        best_key, best = None, live
        for key, (tokens, _) in self._entries.items():
            n = _common_prefix_list(tokens, seq)
            if n > best:
                best_key, best = key, n
        if best_key is None or best - live < self.min_tokens:
            return live
        self._entries.move_to_end(best_key)
        tokens, data = self._entries[best_key]
        C.llama_memory_seq_rm(C.llama_get_memory(llm._ctx.ctx), 0, -1, -1)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if C.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(data), 0) != len(data):
            llm.n_tokens = 0
            return 0
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        return best

    def save(self, llm: Any) -> None:
        """Keep a copy of what the context holds now."""
        import ctypes

        from llama_cpp import llama_cpp as C

        n = llm.n_tokens
        if n < self.min_tokens:
            return
        size = C.llama_state_seq_get_size(llm._ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = C.llama_state_seq_get_data(llm._ctx.ctx, buffer, size, 0)
        tokens = llm.input_ids[:n].tolist()
        for key, (known, _) in list(self._entries.items()):
            if known == tokens[: len(known)]:  # a prefix of this one: the new entry covers it
                del self._entries[key]
        self._entries[self._next] = (tokens, bytes(buffer[:written]))
        self._next += 1
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


GROW_TOKENS = 256  # a GrowingLayer's spare room: one decode call (max_new_tokens 192) grows it at most once


def growing_cache(config: Any) -> Any:
    """A DynamicCache for `config` whose full-attention layers are GrowingLayers (`transformers`' own layer grows by
    `torch.cat` at every step: each decode step copied the whole cache, 14.6 of a 57.6 ms step at a 1,000-token
    context, session 23's profile).
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=config)
    cache.layers = [_growing_layer_class()() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


@functools.cache
def _growing_layer_class() -> Any:
    """GrowingLayer, defined on first use (transformers is imported only when a model is)."""
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer whose keys and values are views of buffers with room to spare: a step writes its token
        into the room (no copy of what is cached); when the room runs out the buffers grow by GROW_TOKENS.
        `keys`/`values` stay what DynamicLayer's are ([batch, heads, length, head_dim], the cached length only),
        so cropping (a view, shorter), masks and deepcopy (tensor views keep sharing their copied storage)
        behave as transformers expects.
        """

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, add = self.get_seq_length(), key_states.shape[-2]
            room = getattr(self, "_room", None)
            if room is None or room[0].shape[-2] < n + add or room[0].shape[:2] != key_states.shape[:2]:
                size = (*key_states.shape[:2], n + add + GROW_TOKENS, key_states.shape[-1])
                room = (torch.empty(size, dtype=key_states.dtype, device=key_states.device),
                        torch.empty(size, dtype=value_states.dtype, device=value_states.device))
                if n:
                    room[0][..., :n, :] = self.keys
                    room[1][..., :n, :] = self.values
                self._room = room
            room[0][..., n:n + add, :] = key_states
            room[1][..., n:n + add, :] = value_states
            self.keys, self.values = room[0][..., :n + add, :], room[1][..., :n + add, :]
            return self.keys, self.values

        def reset(self) -> None:
            self._room = None
            super().reset()

    return GrowingLayer


def column_major_linears(model: Any) -> Any:
    """`model` with each Linear weight stored transposed in memory: the same values (`w.t().contiguous().t()`), so
    `F.linear` multiplies by a contiguous W^T. On this CPU torch's fp32 kernels for a few rows times W^T read the
    weights faster than for W: 180 matrices of this model's shapes took 31 instead of 41 ms for one row and 43
    instead of 60 ms for two, the same from four rows up (prefill). A decode step went from ~55 to ~46 ms. lm_head
    gets its own copy (it shares the embedding table, whose rows a lookup reads): 113 MB more memory.
    The outputs differ from the row-major ones by rounding only (max logit difference ~4e-5); the eval judges them.
    Settings.local_weights `fp32`, the default of sessions 20-23 (oneDNN's `fp32-onednn` is faster: onednn_linears).
    """
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.weight = torch.nn.Parameter(m.weight.detach().t().contiguous().t(), requires_grad=False)
    return model


def onednn_linears(model: Any) -> Any:
    """`model` with each Linear layer computed by oneDNN's inner product (`torch.ops.mkldnn._linear_pointwise`, the op
    torch's own compiler emits for CPU Linear layers) instead of MKL's GEMM, on the weights as loaded (no copy). On
    this AMD CPU MKL's fp32 kernel multiplies one row by a weight on one thread at ~13 GB/s, while oneDNN's uses the
    torch threads: a step's 210 matrices and lm_head took 32.5 instead of 41.6 ms for one row (2 threads), and the
    210 took 27 instead of 45 ms for two rows, 30 instead of 55 for four, 486 instead of 596 for 450 (prefill).
    Same values, rounding aside (~7e-5 on a logit). Settings.local_weights `fp32-onednn`, the default since session
    25: the full eval made the same tool calls as MKL's `fp32` on all 122 cases (sessions 23 and 25), with p50 / p95
    turns 0.479 / 1.643 s against 0.647 / 2.281 s in one run (bench/README.md).
    """
    import torch

    class OneDNNLinear(torch.nn.Linear):
        def forward(self, x: Any) -> Any:
            return llama_step.onednn_linear(x, self.weight, self.bias)

    if not torch.backends.mkldnn.is_available():
        raise UserError("fp32-onednn weights need a torch build with oneDNN (mkldnn); use fp32")
    for m in model.modules():
        if type(m) is torch.nn.Linear:
            m.__class__ = OneDNNLinear
    return model


def bf16_linears(model: Any) -> Any:
    """`model` with every Linear weight but lm_head's stored as bfloat16, each Linear layer multiplied by oneDNN
    (onednn_linears). A decode step reads 2 bytes per such weight instead of 4, and its products run on the
    CPU's bf16 dot products (`avx512_bf16`); agent.llama_step packs those weights once for them (llama_step.packed).
    Inputs are rounded to bfloat16 for each such product and its output returns to fp32, so the residual stream,
    norms, attention and the KV cache stay fp32. lm_head stays fp32: it shares the embedding table, and its logits
    decide each greedy token. Settings.local_weights `bf16-onednn`: the eval lost one case with it, and another with
    only the MLPs in bfloat16, so fp32 stays the default (bench/README.md, session 32).
    """
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise UserError("bf16 weights need a CPU whose oneDNN computes in bfloat16 (AVX-512 or newer); "
                        "use fp32-onednn")
    head = model.get_output_embeddings()
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m is not head:
            m.weight = torch.nn.Parameter(m.weight.detach().to(torch.bfloat16), requires_grad=False)
    return onednn_linears(model)


ONEDNN_WEIGHTS = ("fp32-onednn", "bf16-onednn")  # the weights agent.llama_step's fused, batched passes run


def with_weights(model: Any, weights: str) -> Any:
    """`model` (adapter merged) run the way Settings.local_weights `weights` says."""
    if weights in INT8_KEEP_FP32:
        return int8_linears(model, INT8_KEEP_FP32[weights])
    if weights == "fp32":
        return column_major_linears(model)
    if weights == "fp32-onednn":
        return onednn_linears(model)
    if weights == "bf16-onednn":
        return bf16_linears(model)
    if weights != "fp32-row-major":
        raise UserError(f"unknown in-process weights {weights!r}; expected fp32, fp32-row-major, fp32-onednn, "
                        f"bf16-onednn, {', '.join(INT8_KEEP_FP32)}")
    return model


def int8_linears(model: Any, keep_fp32: tuple[str, ...] = ()) -> Any:
    """`model` (adapter already merged) with every Linear layer replaced by torch's dynamic int8 one: weights int8 per
    output channel, activations quantized per call (fbgemm kernels; AVX2 is enough). What a decode step reads drops
    from 4 to 1 byte per weight, and prefill runs on int8 GEMM: on 2 cores a decode step went from ~60 to ~22 ms and
    a 700-token prefill from ~1.2 to ~0.5 s (bench/README.md). The outputs are not fp32's, and the eval judged them
    worse: with the shipped adapter, task success 0.844 against 0.984 in fp32 (the tool choice moves: a profile
    becomes a journey, a segment overview a funnel). Keeping lm_head, or lm_head and attention, in fp32 did not help
    (0.844, 0.820). Most of the error is in the MLP's down projection, whose input holds this model's outlier
    activations: `keep_fp32=("mlp.down_proj",)` (Settings.local_weights `int8-mixed`) scored 0.893, and 0.926 with an
    adapter trained with int8 in the loop (finetune.int8). So the default stays fp32.

    torch's eager quantization API is deprecated in favour of torchao, but it is what the pinned torch ships and
    runs fast on a CPU without a compiler step; its warnings are silenced here.
    """
    import torch

    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    spec: dict = {torch.nn.Linear: qconfig}
    if keep_fp32:
        spec = {name: qconfig for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and not name.endswith(keep_fp32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)


def _common_prefix_list(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


LLAMA_CONTEXT = 8192  # SmolLM2's context length


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _common_prefix(a, b) -> int:
    """How many leading token ids two 1-d tensors share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = (a[:n] != b[:n]).nonzero()
    return int(diff[0]) if len(diff) else n


BATCH_CALLS = 8  # model calls decoding together in one batched pass (agent.llama_step); more wait for a place


class _Loaded:
    def __init__(self, model, tokenizer, llama=None, batcher=None):
        self.model = model  # the transformers model; None on the llama.cpp runtime
        self.llama = llama  # llama_cpp.Llama on the llama.cpp runtime
        self.tokenizer = tokenizer
        self.batcher = batcher  # agent.llama_step.StepBatcher: the calls' passes computed together, or None
        # Model calls computing at once: up to BATCH_CALLS in batched passes; else one per core on transformers
        # (each has its own KV cache; the weights are only read, and two calls together did 1.65x the work of one
        # at a time on 2 cores: a decode step leaves most of the memory bandwidth unused), one on llama.cpp (one
        # context).
        self.set_slots()
        self.lock = threading.Lock()  # guards the prefix caches (held only to take or put an entry)
        self.prefixes = PrefixCache()  # used under `lock`
        self.llama_states = LlamaStates()  # the same for the llama.cpp runtime, used under `running` (one slot)
        self.in_flight = 0  # model calls computing or waiting for a slot
        self.computing_now = 0  # model calls holding a slot
        self._count_lock = threading.Lock()
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.eos = [i for i in {im_end, tokenizer.eos_token_id} if isinstance(i, int) and i >= 0]
        self._grammars: CallGrammars | None = None
        self._grammars_lock = threading.Lock()

    @contextmanager
    def computing(self) -> Iterator[None]:
        """Hold a slot while a call computes (counted in `computing_now`)."""
        with self.running:
            with self._count_lock:
                self.computing_now += 1
            try:
                yield
            finally:
                with self._count_lock:
                    self.computing_now -= 1

    def set_slots(self, slots: int | None = None) -> None:
        """Let `slots` model calls compute at once (default: as described in __init__). Not while any computes."""
        self.slots = slots or (BATCH_CALLS if self.batcher is not None else _cores() if self.model is not None else 1)
        self.running = threading.BoundedSemaphore(self.slots)

    def share_threads(self, threads: int) -> None:
        """Give the calling thread its share of `threads` for its next forward pass: all of them alone, one each for
        two calls on 2 cores (two calls with two threads each oversubscribe the cores: they did less together than
        with one each). torch's thread count is the calling thread's own once set.
        """
        import torch

        each = max(1, threads // max(1, self.computing_now))
        if torch.get_num_threads() != each:
            torch.set_num_threads(each)

    def enter(self) -> None:
        """Count one more model call (computing or waiting for a slot)."""
        with self._count_lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self._count_lock:
            self.in_flight -= 1

    def stats(self) -> dict[str, float]:
        """Counters: prompt tokens reused and computed; batched passes, the calls' rows in them, their seconds."""
        return {"reused_tokens": self.prefixes.reused_tokens, "computed_tokens": self.prefixes.computed_tokens,
                "passes": self.batcher.passes if self.batcher is not None else 0,
                "rows": self.batcher.rows if self.batcher is not None else 0,
                "pass_seconds": self.batcher.seconds if self.batcher is not None else 0.0}

    def clear_prefixes(self) -> None:
        with self.lock:
            self.prefixes.clear()

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size if self.model is not None else self.llama.n_vocab()

    @property
    def grammars(self) -> CallGrammars:
        """The tokenizer's grammar compiler and compiled grammars (made on first use)."""
        with self._grammars_lock:
            if self._grammars is None:
                self._grammars = CallGrammars(self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.eos)
            return self._grammars


class _Remote:
    """A model whose passes run in an engine process (agent.engine): the tokenizer here (for the prompt text), the
    weights, caches and grammars there.
    """

    model = None
    llama = None

    def __init__(self, tokenizer: Any, engine: Any):
        self.tokenizer = tokenizer
        self.engine = engine  # agent.engine.EngineClient

    @property
    def in_flight(self) -> int:
        return self.engine.in_flight

    @property
    def slots(self) -> int:
        return self.engine.slots

    def stats(self) -> dict[str, float]:
        return self.engine.call("stats")

    def clear_prefixes(self) -> None:
        self.engine.call("clear_prefixes")

    def close(self) -> None:
        self.engine.close()


ModelKey = tuple[str, str | None, str, str, str, bool, bool]
# (model path, adapter, runtime, GGUF type, weights, batched, engine process)


class ModelCache:
    """Loaded in-process models by (model path, adapter, runtime, GGUF type); thread-safe.

    A model loads once per cache, and the models sharing a cache share its loaded weights, prefix caches and
    per-model lock. The app's services own one and hand it to make_chat_model; a LocalChatModel made without one
    uses `default_model_cache()`. Two caches share nothing: each loads its own copy.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[ModelKey, _Loaded] = {}
        self._state = threading.Lock()  # guards _starting only, never held over a load: `starting` never waits
        self._starting: dict[ModelKey, int] = {}

    def __copy__(self) -> ModelCache:
        return self  # shared by identity: a copied model still uses its owner's cache

    def __deepcopy__(self, memo: dict) -> ModelCache:
        return self

    def __bool__(self) -> bool:
        return True  # an empty cache is still a cache (`models or default` must not swap it out)

    def __len__(self) -> int:
        with self._lock:
            return len(self._loaded)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._loaded

    def get(self, key: ModelKey, load: Callable[[], _Loaded]) -> _Loaded:
        """The model loaded for `key`, calling `load()` the first time (under the lock: one load per key)."""
        with self._lock:
            if key not in self._loaded:
                with self.warming(key):
                    self._loaded[key] = load()
            return self._loaded[key]

    @contextmanager
    def warming(self, key: ModelKey) -> Iterator[None]:
        """Mark `key` as starting (loading, or computing its warm-up prefixes) while the block runs."""
        with self._state:
            self._starting[key] = self._starting.get(key, 0) + 1
        try:
            yield
        finally:
            with self._state:
                self._starting[key] -= 1
                if not self._starting[key]:
                    del self._starting[key]

    def starting(self, key: ModelKey) -> bool:
        """Whether the model for `key` is loading or warming up now; never waits for a load."""
        with self._state:
            return key in self._starting

    def peek(self, key: ModelKey) -> _Loaded | None:
        """The model loaded for `key`, or None if it has not been loaded in this cache; never loads."""
        with self._lock:
            return self._loaded.get(key)

    def clear(self) -> None:
        """Forget every loaded model (they are freed once no model call holds them; engine processes stop)."""
        with self._lock:
            loaded, self._loaded = list(self._loaded.values()), {}
        for one in loaded:
            if isinstance(one, _Remote):
                one.close()


_DEFAULT_MODELS = ModelCache()


def default_model_cache() -> ModelCache:
    """The cache of LocalChatModels made without one (the CLI, evals, scripts)."""
    return _DEFAULT_MODELS


def until_stop(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    """The text of `pieces` up to the first stop string (left out); reading ends there, so decoding does too. A piece
    that may be the start of a stop string is held back until the next one shows it is not.
    """
    if not stop:
        yield from pieces
        return
    keep = max(len(s) for s in stop) - 1
    text, sent = "", 0
    for piece in pieces:
        text += piece
        hit = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if hit >= 0:
            if hit > sent:
                yield text[sent:hit]
            close = getattr(pieces, "close", None)
            if close is not None:  # the decoder ends now (and keeps its cache), not when garbage-collected
                close()
            return
        upto = max(sent, len(text) - keep)
        if upto > sent:
            yield text[sent:upto]
            sent = upto
    if len(text) > sent:
        yield text[sent:]


# LocalChatModel fields an engine process loads its model with, and those it takes from each call's model
ENGINE_LOAD_FIELDS = ("model_path", "adapter", "torch_threads", "batched", "runtime", "gguf_type", "gguf_dir",
                      "weights")
ENGINE_CALL_FIELDS = ("max_new_tokens", "prefix_cache", "jump_forward", "growing_cache", "drafts", "prefill_chunk")


class LocalChatModel(BaseChatModel):
    """SmolLM2 (or any causal LM folder) in this process, fp32 on CPU, greedy decoding.

    Models are loaded once per (path, adapter, runtime, GGUF type) in `loaded_models`, a ModelCache passed in by the
    owner (the app's services) or else the default one; `loaded_models.clear()` frees them.
    With tools bound, generation runs under the tool-call grammar (agent/grammar.py) unless `grammar` is off
    (here or in bind_tools); then a forced tool_choice falls back to prefilling the call's opening.
    """

    model_path: str
    adapter: str | None = None
    max_new_tokens: int = 192
    torch_threads: int | None = None
    grammar: bool = True
    prefix_cache: bool = True  # reuse the KV cache of the longest prompt prefix already computed (PrefixCache)
    jump_forward: bool = True  # compute the tokens the grammar forces in one pass instead of one step each
    drafts: bool = True  # under a grammar on the batched path, guess the call's next tokens and check them in the
    # pass with the known one (agent.drafts); False: one chosen token a pass, for measuring
    prefill_chunk: int = 128  # on the batched path, while other calls decode, compute a prompt in passes of at
    # most this many tokens, so their decode steps are not held up by one long pass; 0: a prompt is one pass (as up
    # to session 33). 128 against 0, four conversations at once: p95 0.91x and 0.95x in two runs (bench/README.md)
    growing_cache: bool = True  # KV caches grow in place (growing_cache); False: transformers' own, for measuring
    batched: bool = True  # llama models on ONEDNN_WEIGHTS: fused weights, and concurrent calls' passes computed
    # together (agent.llama_step); False: the transformers forward, a pass per call and slot, for measuring
    engine: bool = False  # compute in an engine process of its own (agent.engine; Settings.local_engine), so that
    # other threads' Python cannot stall the passes; False: in this process
    runtime: str = "transformers"  # or "llamacpp": the same weights, adapter merged, as GGUF (shopdesk.gguf_export)
    gguf_type: str = "f32"
    gguf_dir: str | None = None  # where the merged GGUF is kept (default: next to the model folder)
    weights: str = "fp32-onednn"  # transformers runtime: "fp32-onednn" (oneDNN Linear layers, onednn_linears),
    # "bf16-onednn" (the same, the layers' Linear weights in bfloat16, bf16_linears), "fp32"
    # (MKL, Linear weights column-major, column_major_linears), "fp32-row-major" (MKL, as loaded),
    # "int8" or "int8-mixed" (dynamic int8 Linear layers, int8_linears, INT8_KEEP_FP32)

    loaded_models: ModelCache = Field(default_factory=default_model_cache, exclude=True, repr=False)

    @property
    def _llm_type(self) -> str:
        return "shopdesk-local"

    @classmethod
    def clear_registry(cls) -> None:
        """Free the models of the default cache (compatibility: prefer `model.loaded_models.clear()`)."""
        default_model_cache().clear()

    @property
    def cache_key(self) -> ModelKey:
        """What the loaded model is cached by: (model path, adapter, runtime, GGUF type, weights, batched, engine)."""
        return (self.model_path, self.adapter, self.runtime, self.gguf_type, self.weights, self.batched, self.engine)

    def loaded(self) -> _Loaded:
        """The loaded model, tokenizer and their caches, loaded on first use into `loaded_models`."""
        return self.loaded_models.get(self.cache_key, self._load)

    def _load(self) -> _Loaded:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.runtime not in ("transformers", "llamacpp"):
            raise UserError(f"unknown in-process runtime {self.runtime!r}; expected transformers or llamacpp")
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        tokenizer.chat_template = TEMPLATE.read_text()
        if self.engine:
            from agent.engine import EngineClient

            client = EngineClient({name: getattr(self, name) for name in ENGINE_LOAD_FIELDS})
            client.start()
            return _Remote(tokenizer, client)
        if self.runtime == "llamacpp":
            return _Loaded(None, tokenizer, llama=self._load_llama())
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32)
        if self.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter)
            model = model.merge_and_unload()  # one matmul per layer at inference: as fast as the base model
        model.eval()
        model = with_weights(model, self.weights)
        batcher = None
        if self.batched and self.weights in ONEDNN_WEIGHTS and llama_step.supports(model):
            batcher = llama_step.StepBatcher(llama_step.FusedLlama(model), self.torch_threads or _cores())
        return _Loaded(model, tokenizer, batcher=batcher)

    def _load_llama(self):
        """llama.cpp on a GGUF of this model with the adapter merged (made once, then reused while both are
        unchanged). The prompt is tokenized by the transformers tokenizer and fed as ids, so both runtimes see the
        same tokens.
        """
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise UserError("the llama.cpp runtime needs llama-cpp-python: `pip install -e '.[llamacpp]'` (a source "
                            "build, ~10 min), or set SHOPDESK_LOCAL_RUNTIME=transformers") from exc
        path = merged_gguf(Path(self.model_path), Path(self.adapter) if self.adapter else None, self.gguf_type,
                           smollm_gguf(), Path(self.gguf_dir) if self.gguf_dir else None,
                           chat_template=TEMPLATE.read_text())
        threads = self.torch_threads or _cores()
        return Llama(model_path=str(path), n_ctx=LLAMA_CONTEXT, n_batch=512, n_threads=threads,
                     n_threads_batch=threads, logits_all=False, verbose=False)

    def prompt_text(self, messages: Sequence[BaseMessage], tools: list[dict] | None, tool_choice: Any = None,
               grammar: bool | None = None) -> str:
        """The prompt; the per-turn enums never appear in it (the grammar holds them), so it stays the prompt the
        adapter was trained on.
        """
        tok = self.loaded().tokenizer
        prompt = tok.apply_chat_template(to_chat_dicts(messages), tools=tools or None, add_generation_prompt=True,
                                         tokenize=False)
        return prompt + self._prefix(tools, tool_choice, grammar)

    def _uses_grammar(self, tools: list[dict] | None, grammar: bool | None) -> bool:
        return bool(tools) and (self.grammar if grammar is None else grammar)

    def _prefix(self, tools: list[dict] | None, tool_choice: Any, grammar: bool | None) -> str:
        return "" if self._uses_grammar(tools, grammar) else self._forced_prefix(tools, tool_choice)

    def _call_grammar(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The structural tag this call decodes under, or None (no tools bound, or the grammar is off)."""
        tools = kwargs.get("tools")
        if not self._uses_grammar(tools, kwargs.get("grammar")):
            return None
        return call_structural_tag(constrained_tools(tools, kwargs.get("enums")), kwargs.get("tool_choice"))

    @staticmethod
    def _forced_prefix(tools: list[dict] | None, tool_choice: Any) -> str:
        """Without the grammar: prefill that forces a tool call (tool_choice 'required'/'any' or a tool name)."""
        if not tools or tool_choice in (None, "auto", "none"):
            return ""
        name = None
        if isinstance(tool_choice, dict):
            name = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        elif isinstance(tool_choice, str) and tool_choice not in ("required", "any"):
            name = tool_choice
        if not name:
            return '<tool_call>{"name": "'
        prefix = '<tool_call>{"name": "' + name + '", "arguments": {'
        # a small model fills one value far more reliably than it writes the key: prefill the first required one
        params = next((t["function"].get("parameters") or {} for t in tools if t["function"]["name"] == name), {})
        required = params.get("required") or []
        if required:
            first = required[0]
            kind = (params.get("properties") or {}).get(first, {}).get("type")
            prefix += '"' + first + '": ' + ('"' if kind == "string" else "")
        return prefix

    def _token_stream(self, prompt: str, stop: list[str] | None, call_grammar: dict[str, Any] | None = None
                      ) -> Iterator[str]:
        """Greedy decoding of `prompt`, yielding text as it is made (never half a UTF-8 character).

        The loop is ours rather than `generate()`'s for two savings that leave the choices to the model:
        - the KV cache of the longest prompt prefix already computed is reused (`PrefixCache`);
        - under a grammar, the tokens it forces (the rest of a tool name once the model chose it, `", "arguments":
          {"order_id": "`, the closing `}</tool_call>`) are appended and computed in one forward pass with the next
          token instead of one decode step each (xgrammar's jump-forward tokens). The model chooses every token
          the grammar leaves open.
        The caller may stop reading early (it has seen enough of a plain-text reply): decoding stops with it.
        """
        loaded = self.loaded()
        if isinstance(loaded, _Remote):
            yield from loaded.engine.stream(prompt, stop, call_grammar, self._call_options())
            return
        ids = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
        grammar = loaded.grammars.decoder(call_grammar) if call_grammar is not None else None
        eos = set(loaded.eos)
        loaded.enter()
        try:
            yield from until_stop(self._decode(loaded, ids, grammar, eos), stop)
        finally:
            loaded.leave()

    def _call_options(self) -> dict[str, Any]:
        """The fields an engine process takes from the calling model for each call."""
        return {name: getattr(self, name) for name in ENGINE_CALL_FIELDS}

    def _take_cache(self, loaded: _Loaded, ids: Any) -> tuple[Any, int]:
        """The KV cache to compute `ids` into, and how many of them it already holds: a private copy of the best
        prefix-cache entry, else a new cache (growing in place unless `growing_cache` is off). Called holding a slot.
        """
        with loaded.lock:
            if self.prefix_cache:
                cache, reused = loaded.prefixes.take(ids)
            else:
                cache, reused = None, 0
                loaded.prefixes.computed_tokens += len(ids)  # counted either way, for comparing the two
        if cache is not None:
            return cache, reused
        if self.growing_cache:
            return growing_cache(loaded.model.config), 0
        from transformers import DynamicCache

        return DynamicCache(config=loaded.model.config), 0

    def prefill(self, prompt: str) -> int:
        """Compute `prompt`'s KV cache into the prefix cache without decoding a token (warming a role's fixed
        prefix: its system text and tools); returns the tokens computed. Nothing to do on llama.cpp, whose one
        context keeps the last sequence anyway, or with prefix reuse off.
        """
        loaded = self.loaded()
        if isinstance(loaded, _Remote):
            return loaded.engine.call("prefill", {"prompt": prompt, "options": self._call_options()})
        if loaded.model is None or not self.prefix_cache:
            return 0
        import torch

        ids = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
        loaded.enter()
        try:
            with loaded.computing():
                cache, reused = self._take_cache(loaded, ids)
                if loaded.batcher is not None:
                    with loaded.batcher.member():
                        loaded.batcher.run(ids[reused:].tolist(), cache)
                else:
                    loaded.share_threads(self.torch_threads or _cores())
                    with torch.inference_mode():
                        loaded.model(input_ids=ids[None, reused:], cache=cache, use_cache=True, logits_to_keep=1)
                with loaded.lock:
                    loaded.prefixes.put(ids, cache)
        finally:
            loaded.leave()
        return len(ids) - reused

    def starting(self) -> bool:
        """Whether this model is still loading or warming up (agent.session.warm_up): a call waits for that first."""
        return self.loaded_models.starting(self.cache_key)

    def busy(self) -> int:
        """How many model calls a new call would wait behind now: those computing or waiting, less the slots still
        free (`_Loaded.slots` calls compute at once); 0 before the model is loaded (nothing can be ahead then).
        """
        loaded = self.loaded_models.peek(self.cache_key)
        return max(0, loaded.in_flight - getattr(loaded, "slots", 1) + 1) if loaded is not None else 0

    def _decode(self, loaded: _Loaded, ids: Any, grammar: Any, eos: set[int]) -> Iterator[str]:
        if loaded.llama is not None:
            yield from self._decode_llama(loaded, ids, grammar, eos)
            return
        import torch

        tok, model, batcher = loaded.tokenizer, loaded.model, loaded.batcher
        threads = self.torch_threads or _cores()
        with loaded.computing(), (batcher.member() if batcher is not None else nullcontext()):
            cache, reused = self._take_cache(loaded, ids)
            prompt = ids.tolist()
            new: list[int] = []  # every token made so far

            def forward(feed: list[int], keep: list[int] | None = None) -> Any:
                if batcher is not None:
                    feed, keep = self._prefill_in_chunks(batcher, feed, cache, keep)
                    return batcher.run(feed, cache, keep)
                loaded.share_threads(threads)
                out = model(input_ids=torch.tensor([feed]), cache=cache, use_cache=True, logits_to_keep=1)
                return out.logits[:, -1]

            drafts = None
            if self.drafts and self.jump_forward and batcher is not None and grammar is not None \
                    and grammar.structural_tag:
                from agent.drafts import Drafts

                drafts = Drafts().add(prompt, shortest=2).over(loaded.grammars.exemplars(grammar.structural_tag))
            consistent = False  # the cache holds whole forward passes (not one that failed half-way)
            try:
                with torch.inference_mode():
                    yield from self._greedy(forward, prompt[reused:], tok, grammar, eos, new,
                                            drafts=drafts, cache=cache, context=prompt)
                consistent = True
            except GeneratorExit:  # the caller stopped reading, between two forward passes
                consistent = True
                raise
            finally:
                if self.prefix_cache and consistent:
                    with loaded.lock:
                        loaded.prefixes.put(torch.tensor(prompt + new), cache)

    def _prefill_in_chunks(self, batcher: Any, feed: list[int], cache: Any,
                           keep: list[int] | None) -> tuple[list[int], list[int] | None]:
        """With `prefill_chunk`, while other calls decode, compute the head of a long `feed` in passes of that many
        tokens (their decode steps join each one) and return what is left of `feed`, `keep` shifted to match.
        """
        size = self.prefill_chunk
        if size <= 0:
            return feed, keep
        last = keep[0] if keep else len(feed) - 1  # positions from here on give logits: never split off
        done = 0
        while last - done >= size and batcher.others():
            batcher.run(feed[done:done + size], cache)
            done += size
        if not done:
            return feed, keep
        return feed[done:], ([k - done for k in keep] if keep else keep)

    def _greedy(self, forward: Any, feed: list[int], tok: Any, grammar: Any, eos: set[int], new: list[int],
                drafts: Any = None, cache: Any = None, context: list[int] | None = None) -> Iterator[str]:
        """The greedy loop both runtimes share: `forward(tokens)` computes `tokens` after what is cached and returns
        the next token's logits ([1, vocab]); the tokens made are appended to `new`, the text is yielded as it grows
        (never half a UTF-8 character).

        With `drafts` (agent.drafts; under a grammar, on a `forward(tokens, keep)` that returns the logits after
        each position in `keep`), each pass also computes guessed tokens after the known ones, each followed by
        what the grammar then forces. A guess is kept while it is the token the model picks at its place (the
        masked argmax of the logits before it), and the first one that is not gives the model's own token there.
        The cache, and the grammar, drop what was guessed wrong. So the tokens made are greedy decoding's.
        """
        shown = ""
        while len(new) < self.max_new_tokens and feed:
            guessed = self._guesses(drafts, grammar, (context or []) + new, eos,
                                    self.max_new_tokens - len(new) - 1) if drafts is not None else []
            if guessed:
                flat = [t for step in guessed for t in step]
                grammar.rollback(len(flat))
                keep = [len(feed) - 1]
                for step in guessed:
                    keep.append(keep[-1] + len(step))
                rows = forward(feed + flat, keep)
            else:
                rows = forward(feed)
            token, kept = None, 0
            for i in range(rows.shape[0]):
                logits = rows[i:i + 1]
                if grammar is not None:
                    grammar.mask(logits)
                token = int(logits[0].argmax())
                if i == len(guessed) or token != guessed[i][0]:
                    break
                forced = grammar.advance(token, self.jump_forward)  # the guess is the model's choice: keep it
                new += [token, *forced]
                kept += 1 + len(forced)
                token = None
                if grammar.done():
                    break
            if guessed and (wrong := sum(len(step) for step in guessed) - kept):
                cache.crop(-wrong)
            if token is None or token in eos:
                feed = []
            else:
                step = [token, *(grammar.advance(token, self.jump_forward) if grammar is not None else [])]
                new += step
                feed = [] if grammar is not None and grammar.done() else step
            text = tok.decode(new, skip_special_tokens=True)
            if not text.endswith("\ufffd") and len(text) > len(shown):
                piece, shown = text[len(shown):], text
                yield piece

    def _guesses(self, drafts: Any, grammar: Any, context: list[int], eos: set[int], room: int) -> list[list[int]]:
        """The guessed steps after `context` (each a guessed token and what the grammar forces after it), at most
        MAX_DRAFT tokens and `room`, all accepted by `grammar` (the caller rolls them back).
        """
        from agent.drafts import MAX_DRAFT

        steps: list[list[int]] = []
        total = 0
        context = list(context)
        limit = min(MAX_DRAFT, room)
        while total < limit and not grammar.done():
            token = drafts.guess(context)
            if token is None or token in eos:
                break
            forced = grammar.accept(token, self.jump_forward)
            if forced is None:
                break
            step = [token, *forced]
            steps.append(step)
            context += step
            total += len(step)
        return steps

    def _decode_llama(self, loaded: _Loaded, ids: Any, grammar: Any, eos: set[int]) -> Iterator[str]:
        """The same greedy loop on llama.cpp: its context keeps the KV cache of the last sequence, so the prefix a
        new prompt shares with it is not computed again; forced tokens go in one batch with the next step.
        """
        import numpy as np
        import torch

        llm, tok = loaded.llama, loaded.tokenizer
        with loaded.running:  # one slot: one llama.cpp context
            seq = ids.tolist()
            if len(seq) + self.max_new_tokens > LLAMA_CONTEXT:
                raise UserError(f"the conversation is too long for the model ({len(seq)} prompt tokens; at most "
                                f"{LLAMA_CONTEXT - self.max_new_tokens})")
            reused = 0
            if self.prefix_cache:
                reused = min(loaded.llama_states.restore(llm, seq), len(seq) - 1)
            llm.n_tokens = reused  # eval() drops the cache from here on
            loaded.prefixes.reused_tokens += reused
            loaded.prefixes.computed_tokens += len(seq) - reused
            vocab = llm.n_vocab()

            def forward(feed: list[int]) -> Any:
                llm.eval(feed)
                row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(vocab,))
                return torch.from_numpy(row.copy()).unsqueeze(0)

            try:
                yield from self._greedy(forward, seq[reused:], tok, grammar, eos, [])
            except GeneratorExit:  # the caller stopped reading, between two evaluations: the context is whole
                if self.prefix_cache:
                    loaded.llama_states.save(llm)
                raise
            except BaseException:
                llm.n_tokens = 0  # a decode that failed half-way leaves nothing to trust in the cache
                raise
            if self.prefix_cache:
                loaded.llama_states.save(llm)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tools = kwargs.get("tools")
        tool_choice = kwargs.get("tool_choice")
        prompt = self.prompt_text(messages, tools, tool_choice, kwargs.get("grammar"))
        prefix = self._prefix(tools, tool_choice, kwargs.get("grammar"))
        text = prefix
        sent = 0
        for piece in self._token_stream(prompt, stop, self._call_grammar(kwargs)):
            text += piece
            if prefix:
                continue
            upto = safe_prefix_len(text)
            if upto > sent:
                delta = text[sent:upto]
                sent = upto
                if run_manager:
                    run_manager.on_llm_new_token(delta)
                yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
        final = self.to_message(text) if tools else AIMessage(content=text.strip())
        end = text.find("<tool_call>")
        rest = "" if prefix else text[sent : len(text) if end < 0 else end]
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=rest,
                tool_call_chunks=[{"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": i}
                                  for i, tc in enumerate(final.tool_calls)],
                invalid_tool_calls=final.invalid_tool_calls,
                response_metadata={"raw_text": text},
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools, tool_choice, grammar = kwargs.get("tools"), kwargs.get("tool_choice"), kwargs.get("grammar")
        prompt = self.prompt_text(messages, tools, tool_choice, grammar)
        text = self._prefix(tools, tool_choice, grammar) + "".join(
            self._token_stream(prompt, stop, self._call_grammar(kwargs)))
        message = self.to_message(text) if tools else AIMessage(content=text.strip())
        message.response_metadata["raw_text"] = text
        return ChatResult(generations=[ChatGeneration(message=message)])

    @staticmethod
    def to_message(text: str) -> AIMessage:
        content, parsed = parse_tool_calls(text)
        valid = [{"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"}
                 for c in parsed if c.error is None and isinstance(c.arguments, dict)]
        invalid = [{"name": c.name or None,
                    "args": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments), "id": c.id,
                    "error": c.error or "arguments must be an object", "type": "invalid_tool_call"}
                   for c in parsed if c.error is not None or not isinstance(c.arguments, dict)]
        return AIMessage(content=content, tool_calls=valid, invalid_tool_calls=invalid)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, enums: dict[str, list] | None = None,
                   grammar: bool | None = None, **kwargs: Any):
        """`enums`: per-turn values by argument name (agent.grammar.constrained_tools); `grammar`: override the
        model's `grammar` setting for this binding (False: unconstrained, for measuring).
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, enums=enums, grammar=grammar, **kwargs)


class VLLMChatModel(ChatOpenAI):
    """ChatOpenAI against shopdesk's vLLM server: with tools bound, each request carries the tool-call grammar
    (agent/grammar.py) as vLLM structured outputs, so the server decodes text without `<tool_call>`, or one call
    whose name and arguments follow the schemas and this turn's enums.

    The tools in the request stay as given (the server renders them into the prompt; the enums are not shown), and
    tool_choice goes as "auto": forcing a call is the grammar's job, and under "auto" vLLM keeps the request's
    grammar as it is (a forced tool_choice makes it build its own call grammar and drop the request's). The server
    must not run with `--tool-strict-level parameter`, which adds a call branch without the enums (see
    agent/vllm_server.py).
    """

    grammar: bool = True

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, enums: dict[str, list] | None = None,
                   grammar: bool | None = None, **kwargs: Any):
        formatted = [convert_to_openai_tool(t) for t in tools]
        if not (self.grammar if grammar is None else grammar):
            return super().bind_tools(formatted, tool_choice=tool_choice, **kwargs)
        tag = call_structural_tag(constrained_tools(formatted, enums), tool_choice)
        extra_body = dict(kwargs.pop("extra_body", None) or {})
        extra_body["structured_outputs"] = {"structural_tag": json.dumps(tag)}
        return super().bind_tools(formatted, tool_choice="auto", extra_body=extra_body, **kwargs)


def make_chat_model(settings: Settings, *, adapter: str | None = None, backend: str | None = None,
                    models: ModelCache | None = None) -> BaseChatModel:
    """The configured chat model (settings.llm_backend unless `backend` is given).

    An in-process model loads into `models` (the caller's ModelCache; the default cache when None), so the models
    made with one cache share one loaded copy. The other backends hold no weights and ignore it.
    """
    backend = backend or settings.llm_backend
    if backend == "fake":
        from agent.testing import fake_model_from_env

        return fake_model_from_env()
    if backend == "vllm":
        choice = adapter if adapter is not None else settings.adapter
        # None is "the shipped adapter" (which `shopdesk serve-llm` serves as the LoRA module `shopdesk`)
        wanted: bool | str = True if choice is None else (False if choice.lower() == "none" else choice)
        name = settings.vllm_model or served_model(settings.vllm_url, adapter=wanted)
        return VLLMChatModel(base_url=settings.vllm_url, model=name, api_key="EMPTY", temperature=0, max_tokens=256,
                             timeout=120, max_retries=1)
    if backend == "local":
        from shopdesk.models import resolve_chat_model

        return LocalChatModel(model_path=resolve_chat_model(settings), adapter=resolve_adapter(settings, adapter),
                              torch_threads=settings.torch_threads, prefix_cache=settings.prefix_cache,
                              runtime=settings.local_runtime, gguf_type=settings.gguf_type,
                              weights=settings.local_weights, engine=settings.local_engine == "process",
                              loaded_models=models if models is not None else default_model_cache())
    raise UserError(f"unknown llm backend {backend!r}; expected local, vllm or fake")


SERVED_ADAPTER = "shopdesk"  # the LoRA module name `shopdesk serve-llm` gives the shipped adapter


def served_model(base_url: str, adapter: bool | str = True) -> str:
    """The model to ask vLLM for when none is configured. `adapter` True: the shipped fine-tune (the LoRA module
    `shopdesk`, else the server's only LoRA module); a folder or module name: that LoRA module; False: the base
    model. A wanted adapter the server does not serve is a UserError, never a silent fall-back to the base model.
    """
    import httpx

    try:
        data = httpx.get(base_url.rstrip("/") + "/models", timeout=10).json()["data"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise UserError(f"cannot reach the vLLM server at {base_url} ({exc}); "
                        "start it with `shopdesk serve-llm`") from exc
    base = next((m["id"] for m in data if not m.get("parent")), None)
    loras = [m for m in data if m.get("parent")]
    if adapter is False:
        if base is None:
            raise UserError(f"the vLLM server at {base_url} lists no base model")
        return base
    if adapter is True:
        named = [m["id"] for m in loras if m["id"] == SERVED_ADAPTER] or ([loras[0]["id"]] if len(loras) == 1 else [])
    else:  # a module name, or the adapter's folder (vLLM lists a LoRA module's folder as its `root`)
        named = [m["id"] for m in loras if adapter == m["id"] or _same_folder(adapter, m.get("root"))]
    if not named:
        wanted = SERVED_ADAPTER if adapter is True else adapter
        served = ", ".join(m["id"] for m in loras) or "none"
        raise UserError(f"the vLLM server at {base_url} does not serve the adapter {wanted!r} "
                        f"(LoRA modules: {served}); start it with `shopdesk serve-llm`, or set SHOPDESK_ADAPTER=none "
                        "to use the base model")
    return named[0]


def _same_folder(a: str, b: str | None) -> bool:
    return bool(b) and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def describe(model: BaseChatModel) -> dict[str, Any]:
    """Which backend, model and adapter a chat model is (logged with every turn; shown to staff)."""
    if isinstance(model, LocalChatModel):
        return {"backend": "local", "model": model.model_path, "adapter": model.adapter, "grammar": model.grammar,
                "runtime": model.runtime, "engine": "process" if model.engine else "thread"}
    if isinstance(model, ChatOpenAI):
        return {"backend": "vllm", "model": getattr(model, "model_name", None),
                "url": str(getattr(model, "openai_api_base", "")), "grammar": getattr(model, "grammar", False)}
    return {"backend": getattr(model, "_llm_type", "unknown"), "model": getattr(model, "model_name", None),
            "adapter": None}
