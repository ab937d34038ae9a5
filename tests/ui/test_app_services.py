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
