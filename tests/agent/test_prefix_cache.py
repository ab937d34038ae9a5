"""The in-process decode loop's two savings leave every choice to the model: reusing the KV cache of a prompt prefix
already computed, and computing the tokens a grammar forces in one pass (jump-forward), give the same greedy output
as computing everything step by step. Also: the cache is keyed by token ids and cropped to the shared prefix.
"""

from __future__ import annotations

import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from agent.backends import (
    LocalChatModel,
    ModelCache,
    PrefixCache,
    _common_prefix,
    default_model_cache,
    make_chat_model,
)
from agent.graph import _fact_so_far
from agent.toolspec import tool_spec
from tools.orders import get_order_details, list_my_orders


class _FakeCache:
    """Stands in for a transformers cache: a length that crop() shortens by a negative count."""

    def __init__(self, n: int):
        self.n = n

    def get_seq_length(self) -> int:
        return self.n

    def crop(self, k: int) -> None:
        assert k < 0, "transformers crops by a negative count"
        self.n += k


def test_common_prefix_counts_leading_equal_ids():
    a, b = torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 9, 4, 5])
    assert _common_prefix(a, b) == 2
    assert _common_prefix(a, a[:3]) == 3
    assert _common_prefix(torch.tensor([7]), torch.tensor([8])) == 0


def test_prefix_cache_takes_the_longest_shared_prefix_and_leaves_one_token_to_compute():
    cache = PrefixCache(capacity=2, min_tokens=3)
    cache.put(torch.arange(10), _FakeCache(9))  # generate() leaves the last token out of the cache
    cache.put(torch.tensor([0, 1, 2, 50, 51, 52]), _FakeCache(6))
    taken, n = cache.take(torch.tensor([0, 1, 2, 3, 4, 99]))
    assert n == 5 and taken.get_seq_length() == 5  # cropped copy of the first entry
    taken, n = cache.take(torch.arange(9))  # the whole prompt is cached: its last token is still computed
    assert n == 8 and taken.get_seq_length() == 8
    assert cache.take(torch.tensor([0, 1, 7]))[0] is None  # shares 2 < min_tokens
    assert cache.reused_tokens == 13 and cache.computed_tokens == 1 + 1 + 3


def test_prefix_cache_entries_are_private_copies_and_least_recently_used_go_first():
    cache = PrefixCache(capacity=2, min_tokens=1)
    first = _FakeCache(4)
    cache.put(torch.tensor([1, 2, 3, 4, 5]), first)
    taken, _ = cache.take(torch.tensor([1, 2, 9]))
    assert taken is not first and first.get_seq_length() == 4  # the stored cache is never cropped in place
    cache.put(torch.tensor([5, 6, 7]), _FakeCache(3))
    cache.put(torch.tensor([8, 9, 10]), _FakeCache(3))  # capacity 2: [1..5] (least recently used) goes
    assert cache.take(torch.tensor([1, 2, 3, 4]))[0] is None
    assert cache.take(torch.tensor([8, 9, 0]))[1] == 2


def test_a_forward_pass_that_fails_half_way_leaves_no_cache_entry():
    """A cache a failed forward pass may have half-updated is never stored for reuse; one left by a caller that
    stopped reading is (it holds whole passes).
    """
    from types import SimpleNamespace

    from agent.backends import _Loaded

    class Tokenizer:
        eos_token_id = 0

        def convert_tokens_to_ids(self, token):
            return 0

        def decode(self, ids, skip_special_tokens=True):
            return "a" * len(ids)

    class Model:
        config = None

        def __call__(self, input_ids, cache, use_cache, logits_to_keep):
            cache.n += input_ids.shape[1]
            if cache.n > 12:
                raise RuntimeError("out of memory")
            return SimpleNamespace(logits=torch.tensor([[[0.0, 1.0]]]))  # token 1, never the end (0)

    loaded = _Loaded(Model(), Tokenizer())
    loaded.prefixes = PrefixCache(min_tokens=1)
    loaded.prefixes.put(torch.arange(10), _FakeCache(9))
    model = LocalChatModel(model_path="unused")
    with pytest.raises(RuntimeError):
        list(model._decode(loaded, torch.arange(11), None, {0}))
    assert len(loaded.prefixes._entries) == 1  # only the entry that was there
    stream = model._decode(loaded, torch.arange(11), None, {0})
    next(stream)
    stream.close()  # stopped after one whole pass: that cache is kept
    assert len(loaded.prefixes._entries) == 2


def test_two_model_caches_share_no_loaded_model():
    """Each ModelCache loads its own copy; the models sharing one cache share one load."""
    from types import SimpleNamespace

    loads = []

    def load():
        loads.append(1)
        return SimpleNamespace(in_flight=len(loads))

    first, second = ModelCache(), ModelCache()
    a = LocalChatModel(model_path="unused", loaded_models=first)
    b = LocalChatModel(model_path="unused", prefix_cache=False, loaded_models=first)  # same key, same cache
    c = LocalChatModel(model_path="unused", loaded_models=second)
    assert a.cache_key == b.cache_key == c.cache_key
    assert a.busy() == 0 and a.cache_key not in first  # busy() never loads

    one = first.get(a.cache_key, load)
    assert first.get(b.cache_key, load) is one and len(loads) == 1
    assert a.busy() == b.busy() == 1
    assert c.busy() == 0 and a.cache_key not in second  # nothing leaked into the other cache

    other = second.get(c.cache_key, load)
    assert other is not one and len(loads) == 2 and len(first) == len(second) == 1
    first.clear()
    assert len(first) == 0 and len(second) == 1 and a.busy() == 0 and c.busy() == 2


def test_starting_is_true_while_the_model_loads_or_warms_and_never_waits_for_the_load():
    import threading
    from types import SimpleNamespace

    cache = ModelCache()
    model = LocalChatModel(model_path="unused", loaded_models=cache)
    release, entered = threading.Event(), threading.Event()

    def load():
        entered.set()
        release.wait(10)
        return SimpleNamespace(in_flight=0)

    assert not model.starting()
    loader = threading.Thread(target=cache.get, args=(model.cache_key, load))
    loader.start()
    assert entered.wait(10)
    assert model.starting()  # answered at once, while get() holds the load lock
    release.set()
    loader.join(10)
    assert not model.starting()
    with cache.warming(model.cache_key):  # agent.session.warm_up's role prefixes
        assert model.starting()
        with cache.warming(model.cache_key):
            assert model.starting()
        assert model.starting()
    assert not model.starting()


def test_a_model_made_without_a_cache_uses_the_default_one_and_copies_keep_theirs():
    mine = ModelCache()
    assert LocalChatModel(model_path="unused").loaded_models is default_model_cache()
    model = LocalChatModel(model_path="unused", loaded_models=mine)
    assert model.model_copy(deep=True).loaded_models is mine  # a cache is shared by identity, never copied
    assert "loaded_models" not in model.model_dump()  # not part of what describes the model


def test_make_chat_model_loads_into_the_callers_cache(tmp_path, monkeypatch):
    import shopdesk.models
    from shopdesk.settings import get_settings

    monkeypatch.setattr(shopdesk.models, "resolve_chat_model", lambda settings: str(tmp_path / "model"))
    settings = get_settings(data_dir=tmp_path, llm_backend="local", adapter="none")
    mine = ModelCache()
    model = make_chat_model(settings, models=mine)
    assert isinstance(model, LocalChatModel) and model.loaded_models is mine
    assert make_chat_model(settings).loaded_models is default_model_cache()


@pytest.mark.parametrize(("text", "states"), [
    ("I can help with that", False),
    ("Your order #W1", False),  # the last word may still grow: only finished words are judged
    ("Your order #W1 is", True),
    ("Sure, one moment", False),
    ("The total is $1", False),
    ("The total is $1\n", True),
    ("Wireless Earbuds are", True),  # a catalog name
])
def test_model_text_is_cut_once_its_finished_words_state_a_fact(text, states):
    assert (_fact_so_far(text, ["Wireless Earbuds"]) is not None) is states


@pytest.fixture(scope="module")
def models(shared_models_dir):
    """The same model twice (one loaded copy): every saving off, and as configured by default."""
    from shopdesk.models import SHIPPED_ADAPTER

    models = ModelCache()
    kwargs = dict(model_path=str(shared_models_dir), adapter=str(SHIPPED_ADAPTER), max_new_tokens=48, torch_threads=2,
                  loaded_models=models)
    plain = LocalChatModel(**kwargs, prefix_cache=False, jump_forward=False)
    fast = LocalChatModel(**kwargs)
    yield plain, fast
    models.clear()


@pytest.mark.slow
class TestSameOutput:
    """Greedy output with each saving off and on, on the real SmolLM2 and the shipped adapter."""

    @staticmethod
    def conversation():
        system = SystemMessage("You are the support assistant of a shop. Use the tools to look facts up.")
        first = [system, HumanMessage("Where is my order #W2611340?")]
        call = AIMessage("", tool_calls=[{"name": "get_order_details", "args": {"order_id": "#W2611340"},
                                          "id": "call_1", "type": "tool_call"}])
        result = ToolMessage("Order #W2611340: status processed, placed 2026-10-24, total $536.65.",
                             tool_call_id="call_1")
        return first, [*first, call, result], [system, HumanMessage("Show me all my orders please.")]

    def test_prefix_reuse_and_jump_forward_change_no_token(self, models):
        plain, fast = models
        tools = [tool_spec(get_order_details).openai(), tool_spec(list_my_orders).openai()]
        enums = {"order_id": ["#W2611340", "#W1000001"]}
        prompts = self.conversation()
        cache = fast.loaded().prefixes
        cache.clear()
        reused = computed = 0
        for bound_kwargs in ({"tool_choice": None}, {"tool_choice": "required"}):
            for messages in prompts:
                want = plain.bind_tools(tools, enums=enums, **bound_kwargs).invoke(messages)
                before = cache.reused_tokens, cache.computed_tokens
                got = fast.bind_tools(tools, enums=enums, **bound_kwargs).invoke(messages)
                reused += cache.reused_tokens - before[0]
                computed += cache.computed_tokens - before[1]
                assert got.response_metadata["raw_text"] == want.response_metadata["raw_text"]
                assert got.tool_calls == [] or [c["args"] for c in got.tool_calls] == \
                    [c["args"] for c in want.tool_calls]
        # the calls after the first shared the system turn and tools, and the second prompt extends the first
        assert reused > computed

    def test_warm_up_computes_each_roles_fixed_prefix_and_changes_no_token(self, models, tmp_path):
        """warm_up() (what the app runs at start) loads the model into the given cache and computes each role's
        system text and tools; a customer's first call then computes only its own message, and says what it would
        have said cold.
        """
        from agent.session import SYSTEM_PROMPTS, warm_up
        from shopdesk.models import SHIPPED_ADAPTER
        from shopdesk.settings import Settings
        from tools.registry import tool_functions

        plain, fast = models
        settings = Settings(data_dir=tmp_path, chat_model=fast.model_path, adapter=str(SHIPPED_ADAPTER),
                            llm_backend="local", local_engine="thread", torch_threads=2)
        cache = fast.loaded().prefixes
        cache.clear()
        computed = warm_up(settings, models=fast.loaded_models)
        assert set(computed) == set(SYSTEM_PROMPTS) and all(n > 300 for n in computed.values())
        assert len(fast.loaded_models) == 1 and len(cache._entries) == 2  # the same loaded model, one entry a role
        tools = [tool_spec(fn).openai() for fn in tool_functions("customer")]
        messages = [SystemMessage(SYSTEM_PROMPTS["customer"]), HumanMessage("Where is my order #W2611340?")]
        before = cache.reused_tokens, cache.computed_tokens
        got = fast.bind_tools(tools, tool_choice="required").invoke(messages)
        assert cache.reused_tokens - before[0] >= computed["customer"] - 4  # all but the warm prompt's last line
        assert cache.computed_tokens - before[1] < 30
        want = plain.bind_tools(tools, tool_choice="required").invoke(messages)
        assert got.response_metadata["raw_text"] == want.response_metadata["raw_text"]
        assert warm_up(settings.model_copy(update={"llm_backend": "fake"})) == {}  # nothing in-process to warm

    def test_plain_text_is_unchanged_too(self, models):
        plain, fast = models
        messages = [HumanMessage("Say hello to a customer in one short sentence.")]
        assert fast.invoke(messages).content == plain.invoke(messages).content
        assert fast.invoke(messages).content == plain.invoke(messages).content  # the second time from the cache


def test_until_stop_ends_the_text_before_the_first_stop_string_even_across_pieces():
    from agent.backends import until_stop

    def pieces(*p):
        yield from p

    assert "".join(until_stop(pieces("Hel", "lo <|", "im_end|> more"), ["<|im_end|>"])) == "Hello "
    assert "".join(until_stop(pieces("a", "b", "c"), ["X", "bc"])) == "a"
    assert "".join(until_stop(pieces("no stop here"), ["<|"])) == "no stop here"
    assert "".join(until_stop(pieces("a", "b"), None)) == "ab"
    read = []

    def counted():
        for p in ["one ", "two ", "STOP", "never"]:
            read.append(p)
            yield p

    assert "".join(until_stop(counted(), ["STOP"])) == "one two "
    assert read == ["one ", "two ", "STOP"]  # nothing is decoded after the stop string


def test_busy_counts_the_calls_a_new_call_waits_behind():
    """With two slots a call starts at once beside one other; it waits behind the calls beyond the free slots."""
    from types import SimpleNamespace

    cache = ModelCache()
    model = LocalChatModel(model_path="unused", loaded_models=cache)
    loaded = cache.get(model.cache_key, lambda: SimpleNamespace(in_flight=0, slots=2))
    for in_flight, ahead in [(0, 0), (1, 0), (2, 1), (3, 2)]:
        loaded.in_flight = in_flight
        assert model.busy() == ahead


def test_a_growing_cache_computes_what_transformers_own_cache_computes():
    """growing_cache() writes each step into spare room instead of concatenating (no copy of what is cached): step
    by step past its room, after a deepcopy and a crop (PrefixCache.take), the logits are transformers' own.
    """
    import copy

    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    from agent.backends import GROW_TOKENS, growing_cache

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    model = LlamaForCausalLM(config).eval()
    tokens = torch.randint(0, 64, (1, GROW_TOKENS + 40))

    def run(cache, ids):
        return model(input_ids=ids, cache=cache, use_cache=True).logits[:, -1]

    with torch.inference_mode():
        ours, theirs = growing_cache(config), DynamicCache(config=config)
        assert all(type(layer).__name__ == "GrowingLayer" for layer in ours.layers)
        assert torch.allclose(run(ours, tokens[:, :30]), run(theirs, tokens[:, :30]), atol=1e-5)
        room = ours.layers[0]._room[0].data_ptr()
        for i in range(30, tokens.shape[1]):  # one token a step, past the first room (grows once)
            assert torch.allclose(run(ours, tokens[:, i:i + 1]), run(theirs, tokens[:, i:i + 1]), atol=1e-5)
        assert ours.get_seq_length() == theirs.get_seq_length() == tokens.shape[1]
        assert ours.layers[0]._room[0].data_ptr() != room  # it grew ...
        assert ours.layers[0].keys.data_ptr() == ours.layers[0]._room[0].data_ptr()  # ... and the keys are views
        assert torch.equal(ours.layers[1].values, theirs.layers[1].values)
        # a private copy cropped back 50 tokens then fed other tokens: what a fresh computation gives
        copied = copy.deepcopy(ours)
        assert copied.layers[0].keys.data_ptr() == copied.layers[0]._room[0].data_ptr()  # views of its own room
        assert copied.layers[0].keys.data_ptr() != ours.layers[0].keys.data_ptr()
        copied.crop(-50)
        other = torch.randint(0, 64, (1, 5))
        fresh = run(DynamicCache(config=config), torch.cat([tokens[:, :-50], other], dim=1))
        assert torch.allclose(run(copied, other), fresh, atol=1e-5)
        assert torch.equal(ours.layers[1].values, theirs.layers[1].values)  # the original is untouched
