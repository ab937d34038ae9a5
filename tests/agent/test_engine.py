"""The engine process (agent.engine) on the real SmolLM2: it decodes what the model decodes in this process (plain
text, a tool call under the grammar, two calls at once), a reader that stops early cancels the decode, a load error
and an engine that dies reach the caller as clear errors, and the next call starts a new engine.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.backends import LocalChatModel, ModelCache, make_chat_model
from agent.toolspec import tool_spec
from shopdesk.output import UserError
from shopdesk.settings import Settings
from tools.orders import get_order_details

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(shared_models_dir):
    """The same model twice: in an engine process, and in this process."""
    models = ModelCache()
    remote = LocalChatModel(model_path=str(shared_models_dir), max_new_tokens=40, torch_threads=2, engine=True,
                            loaded_models=models)
    here = remote.model_copy(update={"engine": False})
    yield remote, here
    models.clear()


def test_the_engine_decodes_what_this_process_decodes(pair):
    remote, here = pair
    assert remote.cache_key != here.cache_key
    loaded = remote.loaded()
    assert loaded.model is None and loaded.engine.pid not in (None, os.getpid())  # no weights here
    msgs = [HumanMessage("Say hello in three words.")]
    assert remote.invoke(msgs).content == here.invoke(msgs).content
    chunks = [c.content for c in remote.stream(msgs)]
    assert len([c for c in chunks if c]) > 1 and "".join(chunks).strip() == here.invoke(msgs).content

    spec = tool_spec(get_order_details)
    ask = [SystemMessage("Be brief."), HumanMessage("Where is my order #W2611340?")]
    calls = [m.bind_tools([spec.openai()], tool_choice="get_order_details", enums={"order_id": ["#W2611340"]})
             .invoke(ask) for m in (remote, here)]
    assert calls[0].tool_calls[0]["args"] == {"order_id": "#W2611340"}
    assert calls[0].response_metadata["raw_text"] == calls[1].response_metadata["raw_text"]


def test_two_calls_at_once_get_what_each_gets_alone(pair):
    remote, here = pair
    msgs = [[HumanMessage("Name two colours.")], [HumanMessage("Count to five.")]]
    expected = [here.invoke(m).content for m in msgs]
    before = remote.loaded().stats()
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda m: remote.invoke(m).content, msgs)) == expected
    after = remote.loaded().stats()
    assert after["passes"] > before["passes"] and after["computed_tokens"] > before["computed_tokens"]
    assert remote.loaded().in_flight == 0


def test_a_reader_that_stops_cancels_the_decode(pair):
    remote, _ = pair
    long = remote.model_copy(update={"max_new_tokens": 190})
    loaded = remote.loaded()
    before = loaded.stats()["passes"]
    stream = long.stream([HumanMessage("Write a long story about a lighthouse keeper.")])
    next(stream)
    stream.close()
    time.sleep(1.0)
    # far fewer than the 190 steps the call was allowed (one may be computing when the cancel arrives)
    assert loaded.stats()["passes"] - before < 20
    assert loaded.in_flight == 0
    assert remote.invoke([HumanMessage("Say hello in three words.")]).content  # the engine still answers


def test_prefill_computes_into_the_engines_prefix_cache(pair):
    remote, _ = pair
    prompt = remote.prompt_text([SystemMessage("You are a helpful assistant for a test shop. " * 4)], None)
    assert remote.prefill(prompt) > 16
    assert remote.prefill(prompt) == 1  # the second time only the last token is computed again


def test_an_engine_that_dies_fails_the_call_in_flight_and_the_next_call_starts_another(shared_models_dir):
    models = ModelCache()
    model = LocalChatModel(model_path=str(shared_models_dir), max_new_tokens=190, torch_threads=2, engine=True,
                           loaded_models=models)
    try:
        loaded = model.loaded()
        first = loaded.engine.pid
        stream = model.stream([HumanMessage("Write a long story about a lighthouse keeper.")])
        next(stream)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(UserError, match="model process stopped"):
            for _ in stream:
                pass
        assert loaded.in_flight == 0
        assert model.invoke([HumanMessage("Say hello in three words.")]).content
        assert loaded.engine.pid not in (None, first)
    finally:
        models.clear()
    assert loaded.engine.pid is None  # clear() stopped it


def test_a_load_error_in_the_engine_is_a_clear_error_here(shared_models_dir):
    model = LocalChatModel(model_path=str(shared_models_dir), weights="int4", engine=True, loaded_models=ModelCache())
    with pytest.raises(UserError, match="int4"):
        model.loaded()


def test_the_settings_choose_the_engine_process_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPDESK_LOCAL_ENGINE", raising=False)
    settings = Settings(data_dir=tmp_path, llm_backend="local")
    assert settings.local_engine == "process"
    monkeypatch.setattr("shopdesk.models.resolve_chat_model", lambda _s: "unused")
    assert make_chat_model(settings, models=ModelCache()).engine is True
    threaded = Settings(data_dir=tmp_path, llm_backend="local", local_engine="thread")
    assert make_chat_model(threaded, models=ModelCache()).engine is False
