"""Starting and stopping a vLLM OpenAI-compatible server for the chat model (+ LoRA adapters), from its own venv.

    shopdesk serve-llm --port 8000 --adapter shopdesk=finetune/adapters/shopdesk-smollm2

    with VLLMServer(model_dir, adapters={"shopdesk": adapter_dir}, port=free_port()) as server:
        print(server.base_url)       # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shopdesk.output import UserError

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("chat_template.jinja")
DEFAULT_VENV = REPO / ".venv-vllm"


def vllm_python(venv: Path | str | None = None) -> Path:
    """The interpreter that has vllm: SHOPDESK_VLLM_VENV / `venv`, else .venv-vllm in the repo, else this one."""
    venv = Path(venv or os.environ.get("SHOPDESK_VLLM_VENV") or DEFAULT_VENV)
    candidate = venv / "bin" / "python"
    if candidate.exists():
        return candidate
    return Path(sys.executable)  # GPU machines: the `vllm` package installed beside shopdesk


class VLLMServer:
    """A `python -m vllm.entrypoints.openai.api_server` child process on 127.0.0.1, ready when /v1/models answers."""

    def __init__(self, model: str | Path, *, adapters: dict[str, str | Path] | None = None, host: str = "127.0.0.1",
                 port: int = 8000, venv: Path | str | None = None, served_name: str | None = None,
                 max_model_len: int = 4096, kv_cache_gib: int = 2, dtype: str = "bfloat16",
                 extra_args: list[str] | None = None, log_path: Path | None = None, startup_timeout: float = 600,
                 cache_dir: Path | None = None):
        self.model = str(model)
        self.adapters = {k: str(v) for k, v in (adapters or {}).items()}
        self.host, self.port = host, port
        self.python = vllm_python(venv)
        self.served_name = served_name
        self.max_model_len, self.kv_cache_gib, self.dtype = max_model_len, kv_cache_gib, dtype
        self.extra_args = list(extra_args or [])
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.cache_dir = cache_dir  # vLLM's compile cache (VLLM_CACHE_ROOT); default: shopdesk's data dir
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--host", self.host, "--port", str(self.port), "--dtype", self.dtype,
               "--max-model-len", str(self.max_model_len), "--chat-template", str(TEMPLATE),
               "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
               # without it vLLM constrains only the call envelope of tools not marked `strict`, and forced calls
               # come back with argument keys the schema forbids; `parameter` decodes every call under its schema
               "--tool-strict-level", "parameter"]
        if self.served_name:
            cmd += ["--served-model-name", self.served_name]
        if self.adapters:
            cmd += ["--enable-lora", "--max-lora-rank", "16", "--lora-modules",
                    *[f"{name}={path}" for name, path in self.adapters.items()]]
        return cmd + self.extra_args

    def start(self) -> VLLMServer:
        for name, path in self.adapters.items():
            if not (Path(path) / "adapter_config.json").exists():
                raise UserError(f"adapter {name}: {path} has no adapter_config.json")
        cache = self.cache_dir or os.environ.get("VLLM_CACHE_ROOT")
        if cache is None:
            from shopdesk.settings import get_settings

            cache = get_settings().data_dir / "vllm-cache"  # never the home directory
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib), NO_PROXY="127.0.0.1,localhost",
                   VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", VLLM_CACHE_ROOT=str(cache))
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # its own process group: stop() ends its workers too
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise UserError(f"the vLLM server exited with code {self.proc.returncode} while starting{where}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise UserError(f"the vLLM server did not answer on {self.base_url} within {self.startup_timeout:.0f} s")

    def models(self) -> list[str]:
        return [m["id"] for m in httpx.get(f"{self.base_url}/models", timeout=10).json()["data"]]

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.proc = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
