"""The fused, ragged forward pass (agent.llama_step) against transformers' own forward, and the batcher that
computes concurrent calls' passes together.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from langchain_core.messages import HumanMessage

from agent.backends import LocalChatModel, ModelCache, growing_cache
from agent.llama_step import FusedLlama, StepBatcher, supports


@pytest.fixture
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return LlamaForCausalLM(config).eval()


def _theirs(model, cache, ids):
    return model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True).logits[0, -1]


def test_the_transformers_forward_is_unchanged_by_fusing_and_shares_the_fused_weights(tiny):
    ids = torch.randint(0, 64, (1, 9))
    with torch.inference_mode():
        before = tiny(input_ids=ids).logits
    step = FusedLlama(tiny)
    with torch.inference_mode():
        after = tiny(input_ids=ids).logits
    assert torch.equal(before, after)
    attn, mlp = tiny.model.layers[1].self_attn, tiny.model.layers[1].mlp
    qkv, gate_up = step.layers[1][1], step.layers[1][4]
    assert qkv.shape == (32 + 2 * 16, 32) and gate_up.shape == (2 * 48, 32)
    # the Linear modules read views of the fused matrices: no second copy of the weights
    assert attn.q_proj.weight.data_ptr() == qkv.data_ptr()
    assert attn.v_proj.weight.data_ptr() == qkv[48:].data_ptr()
    assert mlp.up_proj.weight.data_ptr() == gate_up[48:].data_ptr()


def test_one_ragged_pass_computes_what_transformers_computes_for_each_call(tiny):
    """Three calls in one pass: a prompt on an empty cache, three tokens after five cached, one token after nine
    cached; each gets transformers' logits, and each cache ends up holding what transformers' cache holds.
    """
    from transformers import DynamicCache

    step = FusedLlama(tiny)
    tokens = torch.randint(0, 64, (3, 12)).tolist()
    held = [0, 5, 9]
    fed = [tokens[0][:7], tokens[1][5:8], tokens[2][9:10]]
    with torch.inference_mode():
        ours, theirs = [], []
        for row, n in zip(tokens, held, strict=True):
            mine, ref = growing_cache(tiny.config), DynamicCache(config=tiny.config)
            if n:
                _theirs(tiny, mine, row[:n])
                _theirs(tiny, ref, row[:n])
            ours.append(mine)
            theirs.append(ref)
        logits = step.forward(fed, ours)
        expected = torch.stack([_theirs(tiny, ref, feed) for ref, feed in zip(theirs, fed, strict=True)])
    assert logits.shape == (3, 64)
    assert torch.allclose(logits, expected, atol=1e-5)
    for mine, ref, n, feed in zip(ours, theirs, held, fed, strict=True):
        assert mine.get_seq_length() == ref.get_seq_length() == n + len(feed)
        assert torch.allclose(mine.layers[1].keys, ref.layers[1].keys, atol=1e-5)
        assert torch.allclose(mine.layers[0].values, ref.layers[0].values, atol=1e-5)


def test_only_models_it_computes_exactly_are_supported(tiny):
    from transformers import GPT2Config, GPT2LMHeadModel

    assert supports(tiny)
    biased = copy.deepcopy(tiny)
    biased.config.attention_bias = True
    assert not supports(biased)
    assert not supports(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32)))


def _decode(batcher, cache, first, steps, out, start):
    with batcher.member():
        start.wait()
        token = first
        for _ in range(steps):
            logits = batcher.run([token], cache)
            token = int(logits[0].argmax())
            out.append(token)


def test_concurrent_calls_share_each_pass_and_decode_what_they_decode_alone(tiny):
    step = FusedLlama(tiny)
    prompts = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12]]

    def primed(prompt):
        cache = growing_cache(tiny.config)
        with torch.inference_mode():
            step.forward([prompt[:-1]], [cache])
        return cache

    alone = []
    for prompt in prompts:
        out: list[int] = []
        _decode(StepBatcher(step, threads=1), primed(prompt), prompt[-1], 10, out, threading.Barrier(1))
        alone.append(out)
    # gather_s long enough that each pass waits for all three calls: what they share is then certain
    batcher = StepBatcher(step, threads=1, gather_s=5.0)
    outs: list[list[int]] = [[], [], []]
    start = threading.Barrier(3)
    threads = [threading.Thread(target=_decode, args=(batcher, primed(p), p[-1], 10, o, start))
               for p, o in zip(prompts, outs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outs == alone
    assert batcher.rows == 30 and batcher.passes == 10  # every pass computed all three calls' steps


def test_a_serving_thread_computes_every_pass_and_the_calls_get_what_they_get_alone(tiny):
    """serve(): one thread (the engine process's main thread) computes the passes; the calls only queue theirs. Each
    call decodes what it decodes alone, a failed pass fails its call and serving goes on, and stop ends it.
    """
    step = FusedLlama(tiny)
    prompts = [[1, 2, 3], [4, 5, 6, 7]]
    alone = []
    for prompt in prompts:
        out: list[int] = []
        cache = growing_cache(tiny.config)
        _decode(StepBatcher(step, threads=1), cache, prompt[0], 1, [], threading.Barrier(1))
        _decode(StepBatcher(step, threads=1), cache, prompt[1], 8, out, threading.Barrier(1))
        alone.append(out)
    batcher = StepBatcher(step, threads=1, gather_s=5.0)
    stop = threading.Event()
    server = threading.Thread(target=batcher.serve, args=(stop,))
    server.start()
    try:
        outs: list[list[int]] = [[], []]
        callers = []
        start = threading.Barrier(2)
        for prompt, out in zip(prompts, outs, strict=True):
            cache = growing_cache(tiny.config)

            def call(cache=cache, prompt=prompt, out=out):
                _decode(batcher, cache, prompt[0], 1, [], threading.Barrier(1))
                _decode(batcher, cache, prompt[1], 8, out, start)

            callers.append(threading.Thread(target=call))
        for t in callers:
            t.start()
        for t in callers:
            t.join(timeout=60)
        assert outs == alone
        with batcher.member(), pytest.raises(IndexError):
            batcher.run([999], growing_cache(tiny.config))  # no such token: this call fails, serving goes on
        with batcher.member():
            assert batcher.run([1], growing_cache(tiny.config)).shape == (1, 64)
    finally:
        stop.set()
        server.join(timeout=10)
    assert not server.is_alive()
    with batcher.member():  # no thread serving: a call computes its own pass again
        assert batcher.run([2], growing_cache(tiny.config)).shape == (1, 64)


def test_a_failed_pass_fails_every_call_in_it_and_the_next_pass_works(tiny):
    step = FusedLlama(tiny)
    batcher = StepBatcher(step, threads=1)
    cache = growing_cache(tiny.config)
    with batcher.member():
        with pytest.raises(IndexError):
            batcher.run([999], cache)  # no such token
        fresh = growing_cache(tiny.config)
        assert batcher.run([1, 2], fresh).shape == (1, 64)
    assert fresh.get_seq_length() == 2


def test_kept_positions_get_the_logits_a_pass_per_token_gets(tiny):
    """`keep`: the logits after several positions of one feed (drafted tokens checked in one pass) are those a
    pass ending at each of those positions gives.
    """
    step = FusedLlama(tiny)
    ids = torch.randint(0, 64, (12,)).tolist()
    with torch.inference_mode():
        cache = growing_cache(tiny.config)
        step.forward([ids[:5]], [cache])
        rows = step.forward([ids[5:12]], [cache], [[0, 3, 6]])
        one = growing_cache(tiny.config)
        step.forward([ids[:5]], [one])
        each = []
        for i in range(5, 12):
            out = step.forward([[ids[i]]], [one])
            if i - 5 in (0, 3, 6):
                each.append(out[0])
    assert rows.shape == (3, 64)
    torch.testing.assert_close(rows, torch.stack(each), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_batched_default_decodes_what_the_transformers_forward_decodes(shared_models_dir):
    """On the real SmolLM2: the default (fused weights, batched passes) gives the text the transformers forward gives,
    alone and with two calls decoding at once in shared passes.
    """
    from concurrent.futures import ThreadPoolExecutor

    models = ModelCache()
    batched = LocalChatModel(model_path=str(shared_models_dir), max_new_tokens=48, torch_threads=2,
                             loaded_models=models)
    plain = batched.model_copy(update={"batched": False})
    try:
        assert batched.batched and batched.cache_key != plain.cache_key
        loaded = batched.loaded()
        assert loaded.batcher is not None and plain.loaded().batcher is None
        msgs = [[HumanMessage("Say hello in three words.")], [HumanMessage("Name two colours.")]]
        expected = [plain.invoke(m).content for m in msgs]
        assert [batched.invoke(m).content for m in msgs] == expected
        loaded.batcher.gather_s = 1.0  # each pass waits for both calls while both decode
        passes, rows = loaded.batcher.passes, loaded.batcher.rows
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(lambda m: batched.invoke(m).content, msgs)) == expected
        assert loaded.batcher.rows - rows > loaded.batcher.passes - passes  # some passes held both calls
        chunked = batched.model_copy(update={"prefill_chunk": 8})  # prompts in passes of 8 while another decodes
        loaded.batcher.gather_s = 0.003
        loaded.clear_prefixes()
        passes = loaded.batcher.passes
        assert [chunked.invoke(m).content for m in msgs] == expected  # alone: nothing to split for
        alone = loaded.batcher.passes - passes
        loaded.clear_prefixes()
        passes = loaded.batcher.passes
        with loaded.batcher.member():  # another call is decoding (between two of its passes)
            assert [chunked.invoke(m).content for m in msgs] == expected
        assert loaded.batcher.passes - passes > alone  # the prompts took several passes each
    finally:
        models.clear()


class _Recorder:
    """A batcher that records the feeds it is asked to compute; `others` says whether another call decodes."""

    def __init__(self, others: bool):
        self.busy = others
        self.fed: list[list[int]] = []

    def others(self) -> bool:
        return self.busy

    def run(self, feed, cache, keep=None):
        self.fed.append(list(feed))


def test_a_long_prompt_is_split_into_chunks_only_while_other_calls_decode():
    model = LocalChatModel(model_path="unused", prefill_chunk=4)
    prompt = list(range(11))
    alone = _Recorder(others=False)
    assert model._prefill_in_chunks(alone, prompt, None, None) == (prompt, None) and alone.fed == []
    shared = _Recorder(others=True)
    assert model._prefill_in_chunks(shared, prompt, None, None) == ([8, 9, 10], None)
    assert shared.fed == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # drafted guesses after the prompt: the positions whose logits are kept are never split off, and shift
    shared = _Recorder(others=True)
    feed, keep = model._prefill_in_chunks(shared, [*prompt, 50, 51], None, [10, 11, 12])
    assert shared.fed == [[0, 1, 2, 3], [4, 5, 6, 7]] and feed == [8, 9, 10, 50, 51] and keep == [2, 3, 4]
    whole = model.model_copy(update={"prefill_chunk": 0})
    assert whole._prefill_in_chunks(_Recorder(others=True), prompt, None, None) == (prompt, None)
    short = _Recorder(others=True)  # nothing longer than a chunk before the last token: one pass, as before
    assert model._prefill_in_chunks(short, [1, 2, 3, 4], None, None) == ([1, 2, 3, 4], None) and short.fed == []


def test_bf16_weights_keep_lm_head_and_the_stream_fp32_and_the_fused_pass_matches_their_forward(tiny):
    """Settings.local_weights "bf16-onednn": the layers' Linear weights become bfloat16, lm_head's never; the fused pass
    packs them for oneDNN and computes what the transformers forward computes on them, and both stay near the fp32
    model's logits. A CPU whose oneDNN has no bfloat16 gets a clear error.
    """
    from agent.backends import with_weights
    from shopdesk.output import UserError

    weights = "bf16-onednn"

    ids = torch.randint(0, 64, (1, 9))
    with torch.inference_mode():
        fp32 = tiny(input_ids=ids).logits[0, -1]
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        with pytest.raises(UserError, match="bfloat16"):
            with_weights(tiny, weights)
        return
    model = with_weights(tiny, weights)
    layer = model.model.layers[0]
    assert layer.self_attn.q_proj.weight.dtype == layer.self_attn.o_proj.weight.dtype == torch.bfloat16
    assert layer.mlp.gate_proj.weight.dtype == layer.mlp.down_proj.weight.dtype == torch.bfloat16
    assert model.lm_head.weight.dtype == model.get_input_embeddings().weight.dtype == torch.float32
    step = FusedLlama(model)
    _, qkv, o, _, gate_up, down = step.layers[0]
    assert all(w.is_mkldnn and w.dtype == torch.bfloat16 for w in (qkv, o, gate_up, down))  # packed once, for oneDNN
    with torch.inference_mode():
        theirs = model(input_ids=ids).logits[0, -1]
        cache = growing_cache(model.config)
        ours = step.forward([ids[0].tolist()], [cache])[0]
    assert ours.dtype == theirs.dtype == torch.float32
    assert cache.layers[0].keys.dtype == torch.float32  # the KV cache stays fp32
    assert torch.allclose(ours, theirs, atol=1e-4)
    # bfloat16 keeps 8 bits of each weight: near the fp32 logits, not equal to them
    assert 0 < (ours - fp32).abs().max() < 0.05 * fp32.abs().max()
