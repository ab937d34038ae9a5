"""Settings resolution, model preparation errors and the CLI's entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shopdesk.output import UserError


def test_settings_from_env_and_config_file(tmp_path, monkeypatch, data_dir):
    from shopdesk.settings import get_settings

    s = get_settings()
    assert s.data_dir == data_dir
    assert s.db_url == f"sqlite:///{data_dir / 'shop.db'}"
    assert s.chroma_dir == data_dir / "chroma"

    cfg = tmp_path / "shopdesk.toml"
    cfg.write_text('llm_backend = "vllm"\nvllm_url = "http://127.0.0.1:9999/v1"\n')
    monkeypatch.setenv("SHOPDESK_CONFIG", str(cfg))
    s = get_settings()
    assert s.llm_backend == "vllm" and s.vllm_url.endswith(":9999/v1")
    monkeypatch.setenv("SHOPDESK_LLM_BACKEND", "local")  # env beats the file
    assert get_settings().llm_backend == "local"


def test_settings_reject_bad_values(monkeypatch, data_dir):
    from pydantic import ValidationError

    from shopdesk.settings import get_settings

    monkeypatch.setenv("SHOPDESK_LLM_BACKEND", "gpt-cloud")
    with pytest.raises(ValidationError, match="llm_backend"):
        get_settings()


def test_missing_config_file_is_a_clear_error(monkeypatch, data_dir):
    from shopdesk.settings import get_settings

    monkeypatch.setenv("SHOPDESK_CONFIG", "/nonexistent/shopdesk.toml")
    with pytest.raises(FileNotFoundError, match="SHOPDESK_CONFIG"):
        get_settings()


def test_unprepared_chat_model_says_how_to_provide_one(settings):
    from shopdesk.models import resolve_chat_model

    with pytest.raises(UserError, match="shopdesk models prepare"):
        resolve_chat_model(settings)


def test_embedding_model_resolves_offline(settings):
    from pathlib import Path

    from shopdesk.models import resolve_embedding_model

    assert (Path(resolve_embedding_model(settings)) / "config.json").exists()


@pytest.mark.slow
def test_prepared_chat_model_loads_with_tool_template(shared_models_dir):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(shared_models_dir)
    assert not hasattr(config, "quantization_config")
    tok = AutoTokenizer.from_pretrained(shared_models_dir)
    tools = [{"type": "function", "function": {"name": "get_order_details", "description": "Order status.",
              "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                             "required": ["order_id"]}}}]
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tools=tools, tokenize=False,
                                   add_generation_prompt=True)
    assert "- get_order_details(order_id: string): Order status." in text
    assert text.endswith("<|im_start|>assistant\n")


def test_cli_help_and_models_info_json(data_dir):
    out = subprocess.run([sys.executable, "-m", "shopdesk.cli", "--help"], capture_output=True, text=True, check=True)
    assert "models" in out.stdout
    res = subprocess.run([sys.executable, "-m", "shopdesk.cli", "models", "info", "--json"], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "shopdesk models prepare" in res.stderr  # not prepared in a fresh data dir
    assert "Traceback" not in res.stderr
