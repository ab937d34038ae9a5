"""The app's services own the caches their sessions share: each AppServices its own, so several can coexist."""

from __future__ import annotations


def _settings(tmp_path, **overrides):
    from shopdesk.settings import get_settings

    return get_settings(data_dir=tmp_path, **overrides)


def test_two_services_share_neither_indexes_nor_models(tmp_path):
    from ui.app import AppServices

    a = AppServices(_settings(tmp_path / "a"))
    b = AppServices(_settings(tmp_path / "b"))
    assert a.indexes is a.indexes and a.models is a.models  # made once, then kept
    assert a.indexes is not b.indexes and a.models is not b.models


def test_services_use_the_caches_they_are_given(tmp_path, sample_store):
    from agent.backends import ModelCache
    from index.shared import IndexRegistry, default_registry
    from ui.app import AppServices

    indexes, models = IndexRegistry(), ModelCache()
    svc = AppServices(_settings(tmp_path), store=sample_store, indexes=indexes, models=models)
    assert svc.indexes is indexes and svc.models is models
    ctx = svc.marketer_context()
    assert ctx.indexes is indexes and ctx.indexes is not default_registry()


def test_an_opened_session_searches_its_services_indexes(tmp_path, sample_store):
    from ui.app import AppServices

    svc = AppServices(_settings(tmp_path, llm_backend="fake"), store=sample_store)
    first, second = svc.open_chat("marketer", None), svc.open_chat("marketer", None)
    assert first.ctx.indexes is svc.indexes and second.ctx.indexes is svc.indexes
    other = AppServices(_settings(tmp_path, llm_backend="fake"), store=sample_store)
    assert other.open_chat("marketer", None).ctx.indexes is not svc.indexes


def test_warming_says_what_it_did_and_never_raises(tmp_path):
    # `shopdesk ui` warms the chat model beside the server: a model that cannot load is a line in the console (the
    # first turn meets it again as a friendly error), never a crash of the server; nothing to warm is said too
    from ui.app import AppServices

    unprepared = AppServices(_settings(tmp_path, llm_backend="local")).warm()  # `shopdesk models prepare` not run
    assert unprepared.startswith("warming the chat model failed: The chat model is not prepared")
    assert str(tmp_path) in unprepared  # where it looked
    broken = AppServices(_settings(tmp_path, llm_backend="local", chat_model=str(tmp_path / "no-model")))
    assert broken.warm().startswith("warming the chat model failed (see the log)")
    assert "served elsewhere" in AppServices(_settings(tmp_path, llm_backend="fake")).warm()
    assert "session factory" in AppServices(_settings(tmp_path), session_factory=lambda *a, **k: None).warm()
    # the in-process warm-up itself: tests/agent/test_prefix_cache.py (test_warm_up_...)
