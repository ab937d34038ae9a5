"""Typed settings for every shopdesk job: SHOPDESK_* env vars, then an optional TOML config file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def _config_file() -> Path | None:
    path = os.environ.get("SHOPDESK_CONFIG")
    return Path(path) if path else None


# Settings.local_weights: for each int8 option, the Linear layers (by name suffix) that stay fp32. In "int8-mixed" the
# MLP's down projection stays fp32: its input carries this model's outlier activations (up to ~3,000 where most are
# below 10), and rounding that input to 7 bits per tensor cost most of int8's error (bench/README.md).
INT8_KEEP_FP32: dict[str, tuple[str, ...]] = {"int8": (), "int8-mixed": ("mlp.down_proj",)}


class Settings(BaseSettings):
    """Where shopdesk keeps its data and which engines it talks to.

    Embedded defaults: SQLite file, persistent Chroma folder, in-process model.
    Production: set `database_url` (PostgreSQL), `chroma_url` (Chroma server), `llm_backend="vllm"` and `vllm_url`.
    """

    # hide_input_in_errors: a bad SHOPDESK_SECRET_KEY must not be echoed in the error that reports it
    model_config = SettingsConfigDict(env_prefix="SHOPDESK_", extra="ignore", hide_input_in_errors=True)

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("shopdesk", appauthor=False)),
        description="Folder for the database, Chroma index, converted models and logs.",
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file shop.db in data_dir.")
    chroma_path: Path | None = Field(None, description="Persistent Chroma folder; default: data_dir/chroma.")
    chroma_url: str | None = Field(None, description="Chroma server URL (http://host:port); overrides chroma_path.")
    chat_model: str | None = Field(
        None,
        description="HF model id or local folder of the chat model; default: converted SmolLM2 in data_dir/models.",
    )
    embedding_model: str | None = Field(
        None, description="HF model id or local folder of the embedding model; default: all-MiniLM-L6-v2 from PyPI."
    )
    adapter: str | None = Field(
        None,
        description="LoRA adapter folder for the chat model; 'none' disables; default: the repo's shipped adapter.",
    )
    llm_backend: Literal["local", "vllm", "fake"] = Field(
        "local", description="Which chat model backend the agent uses."
    )
    vllm_url: str = Field("http://127.0.0.1:8000/v1", description="Base URL of the vLLM OpenAI-compatible server.")
    vllm_model: str | None = Field(None, description="Model name to request from vLLM (the LoRA module name if any).")
    demo: bool = Field(
        False, description="Demo mode: anyone may pick a customer to chat as, and the marketer password defaults to "
        "'marketer'. Never on a shop's live site."
    )
    marketer_password: SecretStr | None = Field(
        None, description="Demo mode only: the shared password of the marketer console (default 'marketer'). "
        "Outside demo mode marketers sign in with their own staff account (`shopdesk staff add`)."
    )
    secret_key: SecretStr | None = Field(
        None, description="The secret the shop signs customer tokens with (HS256); at least 32 characters."
    )
    rate_limit: str = Field("30/minute", description="Chat API requests allowed per customer, e.g. '30/minute'.")
    rate_limit_per_address: str = Field(
        "120/minute", description="Chat API requests allowed per client address (several customers may share one)."
    )
    torch_threads: int | None = Field(None, ge=1, description="Threads for in-process torch; default: all cores.")
    embedding_runtime: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8", description="Embeddings: ONNX Runtime on an int8 quantization of the model's export with fused "
        "attention (2x onnx's records/s on a 2-core CPU; vectors at cosine >= 0.97 to fp32, the same search quality "
        "on the labelled set), ONNX Runtime on the fp32 export, or sentence-transformers on torch (the same vectors "
        "as onnx, cosine > 0.9999). The ONNX files are made by `shopdesk models prepare`, or on first use; an index "
        "built with one kind of vectors is embedded again by `shopdesk index build` for another "
        "(bench/bench_search.py)."
    )
    embedding_onnx: Path | None = Field(
        None, description="Where the embedding model's ONNX export is kept; default: data_dir/models/embedding-onnx."
    )
    prefix_cache: bool = Field(True, description="In-process: reuse the KV cache of prompt prefixes already computed.")
    local_runtime: Literal["transformers", "llamacpp"] = Field(
        "transformers", description="In-process runtime: transformers (fp32), or llama.cpp (llama-cpp-python, the "
        "`llamacpp` extra) on a GGUF of the same weights with the adapter merged in (made on first use). llama.cpp "
        "decodes 1.8x faster here but its turns were not faster (bench/README.md)."
    )
    local_engine: Literal["process", "thread"] = Field(
        "process", description="In-process backend: compute the model in an engine process of its own (`process`), "
        "so the conversations' tools and rendering cannot stall its passes (agent.engine; bench/README.md, session "
        "27), or on the calling threads of this process (`thread`)."
    )
    local_weights: Literal["fp32-onednn", "bf16-onednn", "fp32", "fp32-row-major", "int8", "int8-mixed"] = Field(
        "fp32-onednn", description="In-process transformers runtime: the merged weights in fp32 as loaded, each "
        "Linear layer multiplied by oneDNN (`fp32-onednn`: 1.22x `fp32`'s decode rate and 0.54x its time to first "
        "token in session 25's bench_llm run, the same tool calls on every eval case); `bf16-onednn`, the same with "
        "the layers' Linear weights in bfloat16, packed for oneDNN, and the rest fp32 (agent.backends.bf16_linears: "
        "faster, but the eval lost one case); "
        "`fp32`, MKL's GEMM on each Linear's weight stored column-major (the default of sessions 20-23; ~20% faster "
        "decode here than `fp32-row-major`, MKL on the layout as loaded); torch's dynamic int8 "
        "Linear layers (`int8`: per-channel weights; ~2.8x faster decode steps and ~2.4x faster prefill on 2 cores, "
        "but the shipped adapter's eval success fell from 0.984 to 0.844); or `int8-mixed`, int8 but for each MLP's "
        "down projection (INT8_KEEP_FP32): 0.893 with the shipped adapter, 0.926 with one trained with int8 in the "
        "loop (finetune --int8_aware), p50 turn ~0.7x fp32's. bench/README.md."
    )
    gguf_type: Literal["f32", "f16"] = Field(
        "f32", description="llama.cpp runtime: the type the merged weights are stored in (f32 keeps them exactly; "
        "f16 halves what a decode step reads, but on a CPU without native f16 math it decoded no faster)."
    )

    @field_validator("secret_key")
    @classmethod
    def _key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (HS256 needs a 256-bit secret)")
        return value

    @field_validator("rate_limit", "rate_limit_per_address")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate: write it like '30/minute' or '5/second'") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = _config_file()
        if config is not None:
            if not config.is_file():
                raise FileNotFoundError(f"SHOPDESK_CONFIG points to {config}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'shop.db'}"

    @property
    def chroma_dir(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def get_settings(**overrides) -> Settings:
    """Fresh settings from the environment (never cached: tests change env vars between cases)."""
    return Settings(**overrides)
