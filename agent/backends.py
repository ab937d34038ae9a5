"""Chat model backends of the agent: in-process transformers (+ peft adapter), vLLM over its OpenAI API, or scripted.

Both real backends render agent/chat_template.jinja, decode under the same tool-call grammar (agent/grammar.py:
xgrammar's logits processor here, structured outputs on the vLLM server) and read `<tool_call>{json}</tool_call>`
the same way (agent/parsing.py here; vLLM's hermes tool parser on the server). Per-turn enums go in with the tools:

    bound = model.bind_tools(tools, enums={"order_id": ["#W2611340"]}, tool_choice=None)   # either backend
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI

from agent.grammar import CallGrammars, call_structural_tag, constrained_tools
from agent.parsing import parse_tool_calls, safe_prefix_len
from shopdesk.output import UserError
from shopdesk.settings import Settings

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("chat_template.jinja")
REPO_ADAPTER = Path(__file__).resolve().parent.parent / "finetune" / "adapters" / "shopdesk-smollm2"


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


def resolve_adapter(settings: Settings, adapter: str | None = None) -> str | None:
    """The adapter folder to load: explicit > settings > the one shipped in the repo; 'none' disables."""
    choice = adapter if adapter is not None else settings.adapter
    if choice is None:
        return str(REPO_ADAPTER) if (REPO_ADAPTER / "adapter_config.json").exists() else None
    if choice.lower() == "none":
        return None
    if not (Path(choice) / "adapter_config.json").exists():
        raise UserError(f"adapter folder {choice} has no adapter_config.json (set SHOPDESK_ADAPTER=none to run without)")
    return choice


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
        (None, 0) when no entry shares at least `min_tokens`. One token is always left to compute."""
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
        `sequence` (generate() leaves the last sampled token out)."""
        n = cache.get_seq_length()
        if n < self.min_tokens:
            return
        self._entries[self._next] = (sequence[:n].clone(), cache)
        self._next += 1
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def _common_prefix(a, b) -> int:
    """How many leading token ids two 1-d tensors share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = (a[:n] != b[:n]).nonzero()
    return int(diff[0]) if len(diff) else n


class _Loaded:
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()  # generate() is not re-entrant on one model
        self.prefixes = PrefixCache()  # used under `lock`
        self.in_flight = 0  # model calls decoding or waiting for `lock`
        self._count_lock = threading.Lock()
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.eos = [i for i in {im_end, tokenizer.eos_token_id} if isinstance(i, int) and i >= 0]
        self._grammars: CallGrammars | None = None
        self._grammars_lock = threading.Lock()

    def enter(self) -> None:
        """Count one more model call (decoding or waiting for `lock`)."""
        with self._count_lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self._count_lock:
            self.in_flight -= 1

    @property
    def grammars(self) -> CallGrammars:
        """The tokenizer's grammar compiler and compiled grammars (made on first use)."""
        with self._grammars_lock:
            if self._grammars is None:
                self._grammars = CallGrammars(self.tokenizer, vocab_size=self.model.config.vocab_size,
                                              stop_token_ids=self.eos)
            return self._grammars


class LocalChatModel(BaseChatModel):
    """SmolLM2 (or any causal LM folder) in this process, fp32 on CPU, greedy decoding.

    Models are loaded once per (path, adapter) in the explicit class-level `registry`; `clear_registry()` frees them.
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

    registry: ClassVar[dict[tuple[str, str | None], _Loaded]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @property
    def _llm_type(self) -> str:
        return "shopdesk-local"

    @classmethod
    def clear_registry(cls) -> None:
        with cls._registry_lock:
            cls.registry.clear()

    def loaded(self) -> _Loaded:
        key = (self.model_path, self.adapter)
        with self._registry_lock:
            if key not in self.registry:
                self.registry[key] = self._load()
            return self.registry[key]

    def _load(self) -> _Loaded:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        tokenizer.chat_template = TEMPLATE.read_text()
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32)
        if self.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter)
            model = model.merge_and_unload()  # one matmul per layer at inference: as fast as the base model
        model.eval()
        return _Loaded(model, tokenizer)

    def render(self, messages: Sequence[BaseMessage], tools: list[dict] | None, tool_choice: Any = None,
               grammar: bool | None = None) -> str:
        """The prompt; the per-turn enums never appear in it (the grammar holds them), so it stays the prompt the
        adapter was trained on."""
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
        ids = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
        grammar = loaded.grammars.decoder(call_grammar) if call_grammar is not None else None
        eos = set(loaded.eos)
        loaded.enter()
        try:
            yield from self._decode(loaded, ids, grammar, eos)
        finally:
            loaded.leave()

    def busy(self) -> int:
        """How many model calls are decoding or waiting on this model now (a new call waits behind them); 0 before
        the model is loaded (nothing can be ahead then)."""
        loaded = self.registry.get((self.model_path, self.adapter))
        return loaded.in_flight if loaded is not None else 0

    def _decode(self, loaded: _Loaded, ids: Any, grammar: Any, eos: set[int]) -> Iterator[str]:
        import torch

        tok, model = loaded.tokenizer, loaded.model
        with loaded.lock:
            if self.prefix_cache:
                cache, reused = loaded.prefixes.take(ids)
            else:
                cache, reused = None, 0
                loaded.prefixes.computed_tokens += len(ids)  # counted either way, for comparing the two
            if cache is None:
                from transformers import DynamicCache

                cache = DynamicCache(config=model.config)
            seq = ids.tolist()  # the prompt and every token made so far
            feed = seq[reused:]  # what the cache still lacks
            new: list[int] = []
            shown = ""
            consistent = False  # the cache holds whole forward passes (not one that failed half-way)
            try:
                with torch.inference_mode():
                    while len(new) < self.max_new_tokens and feed:
                        logits = model(input_ids=torch.tensor([feed]), cache=cache, use_cache=True,
                                       logits_to_keep=1).logits[:, -1]
                        if grammar is not None:
                            grammar.mask(logits)
                        token = int(logits[0].argmax())
                        if token in eos:
                            break
                        step = [token, *(grammar.advance(token, self.jump_forward) if grammar is not None else [])]
                        seq += step
                        new += step
                        feed = [] if grammar is not None and grammar.done() else step
                        text = tok.decode(new, skip_special_tokens=True)
                        if not text.endswith("\ufffd") and len(text) > len(shown):
                            piece, shown = text[len(shown):], text
                            yield piece
                consistent = True
            except GeneratorExit:  # the caller stopped reading, between two forward passes
                consistent = True
                raise
            finally:
                if self.prefix_cache and consistent:
                    loaded.prefixes.put(torch.tensor(seq), cache)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tools = kwargs.get("tools")
        tool_choice = kwargs.get("tool_choice")
        prompt = self.render(messages, tools, tool_choice, kwargs.get("grammar"))
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
        prompt = self.render(messages, tools, tool_choice, grammar)
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
        invalid = [{"name": c.name or None, "args": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments),
                    "id": c.id, "error": c.error or "arguments must be an object", "type": "invalid_tool_call"}
                   for c in parsed if c.error is not None or not isinstance(c.arguments, dict)]
        return AIMessage(content=content, tool_calls=valid, invalid_tool_calls=invalid)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, enums: dict[str, list] | None = None,
                   grammar: bool | None = None, **kwargs: Any):
        """`enums`: per-turn values by argument name (agent.grammar.constrained_tools); `grammar`: override the
        model's `grammar` setting for this binding (False: unconstrained, for measuring)."""
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


def make_chat_model(settings: Settings, *, adapter: str | None = None, backend: str | None = None) -> BaseChatModel:
    """The configured chat model (settings.llm_backend unless `backend` is given)."""
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
                              torch_threads=settings.torch_threads, prefix_cache=settings.prefix_cache)
    raise UserError(f"unknown llm backend {backend!r}; expected local, vllm or fake")


SERVED_ADAPTER = "shopdesk"  # the LoRA module name `shopdesk serve-llm` gives the shipped adapter


def served_model(base_url: str, adapter: bool | str = True) -> str:
    """The model to ask vLLM for when none is configured. `adapter` True: the shipped fine-tune (the LoRA module
    `shopdesk`, else the server's only LoRA module); a folder or module name: that LoRA module; False: the base
    model. A wanted adapter the server does not serve is a UserError, never a silent fall-back to the base model."""
    import httpx

    try:
        data = httpx.get(base_url.rstrip("/") + "/models", timeout=10).json()["data"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise UserError(f"cannot reach the vLLM server at {base_url} ({exc}); start it with `shopdesk serve-llm`") from exc
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
    if isinstance(model, LocalChatModel):
        return {"backend": "local", "model": model.model_path, "adapter": model.adapter, "grammar": model.grammar}
    if isinstance(model, ChatOpenAI):
        return {"backend": "vllm", "model": getattr(model, "model_name", None),
                "url": str(getattr(model, "openai_api_base", "")), "grammar": getattr(model, "grammar", False)}
    return {"backend": getattr(model, "_llm_type", "unknown"), "model": getattr(model, "model_name", None), "adapter": None}
