"""CLI of the `finetune` area: `shopdesk finetune ...` and `shopdesk transcripts export|synthesize|validate|evaluate`.

    shopdesk transcripts synthesize --store tau2 --n 500 --seed 0 --out .data/synth.jsonl [--dev DEV.jsonl]
    shopdesk transcripts validate .data/synth.jsonl
    shopdesk transcripts export --out .data/logged.jsonl [--format sharegpt]
    shopdesk finetune --transcripts .data/synth.jsonl --out finetune/adapters/shopdesk-smollm2 \
        --config finetune/recipes/smollm2-135m-lora.yaml
    shopdesk transcripts evaluate --transcripts finetune/adapters/shopdesk-smollm2/data/dev.jsonl \
        --adapter finetune/adapters/shopdesk-smollm2 --json
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, emit

FORMAT_OPT = typer.Option("openai", "--format", help="openai (chat messages) or sharegpt (conversations).")


def _check_format(fmt: str) -> str:
    if fmt not in ("openai", "sharegpt"):
        raise UserError(f"--format must be openai or sharegpt, got {fmt!r}")
    return fmt


def register(app: typer.Typer) -> None:
    """Add the `finetune` and `transcripts` commands to `app`."""
    transcripts = typer.Typer(help="Support transcripts: synthesize, validate, export, evaluate.", no_args_is_help=True)

    @transcripts.command("validate")
    @cli_errors
    def validate_cmd(
        path: Path = typer.Argument(..., help="JSONL transcripts (OpenAI chat or ShareGPT format)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Check every transcript; list each problem with file, line, message index and field."""
        from finetune.transcripts import validate_file

        result = validate_file(path)

        def text(r) -> str:
            head = (f"{r['file']}: {r['valid']} valid, {r['invalid']} invalid "
                    f"({r['assistant_turns']} assistant turns, {r['tool_calls']} tool calls)")
            return "\n".join([head, *r["errors"]])

        emit(result, as_json, text)
        if result["invalid"]:
            raise typer.Exit(2)

    @transcripts.command("export")
    @cli_errors
    def export_cmd(
        out: Path = typer.Option(..., "--out", help="JSONL file to write."),
        fmt: str = FORMAT_OPT,
        channel: str | None = typer.Option(None, help="Only conversations of this channel (chat, eval, synthetic)."),
        resolved: bool = typer.Option(False, "--resolved", help="Only conversations a person resolved from the "
                                      "handoff inbox, redacted (emails, phones, cards, addresses)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Write the agent's logged conversations (the store's conversations and messages) as transcripts;
        `--resolved`: the ones a person resolved, redacted, so the bot learns from what the humans did.
        """
        from finetune.redact import redact_all
        from finetune.transcripts import export_from_store, write_transcripts
        from store.db import open_store
        from store.tickets import resolved_conversation_ids

        store = open_store()
        try:
            found = export_from_store(store, channel=channel)
            if resolved:
                keep = set(resolved_conversation_ids(store))
                found, _ = redact_all([t for t in found if t.conversation_id in keep])
        finally:
            store.dispose()
        n = write_transcripts(found, out, _check_format(fmt))
        emit({"file": str(out), "conversations": n, "format": fmt}, as_json,
             lambda r: f"wrote {r['conversations']} conversations to {r['file']} ({r['format']})")

    @transcripts.command("synthesize")
    @cli_errors
    def synthesize_cmd(
        out: Path = typer.Option(..., "--out", help="JSONL file to write."),
        store: str = typer.Option("tau2", "--store", help="tau2 (retail data) or sample (the sample shop)."),
        n: int = typer.Option(200, "--n", min=1, help="Conversations to play (each gives one training example per "
                                                      "call of the model)."),
        seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same conversations)."),
        marketer_share: float | None = typer.Option(None, help="Share of marketer conversations (default: 0.15 on "
                                                                "sample, 0 on tau2)."),
        zh_share: float = typer.Option(0.25, help="Share of conversations in Chinese."),
        flows: str = typer.Option("", "--flows", help="Only these flows, comma-separated (e.g. products,recommend,"
                                                       "marketer); default: all."),
        dev: Path | None = typer.Option(None, "--dev", help="A dev split (JSONL transcripts) whose customers are left "
                                                            "out too (the eval cases' customers always are)."),
        fmt: str = FORMAT_OPT,
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Training examples from conversations played with the real tools on a private copy of the shop's data."""
        from finetune.synthesize import pick_flows, synthesize
        from finetune.transcripts import write_transcripts
        from shopdesk.settings import get_settings

        if store not in ("tau2", "sample"):
            raise UserError(f"--store must be tau2 or sample, got {store!r}")
        _check_format(fmt)
        chosen = [f.strip() for f in flows.split(",") if f.strip()] or None
        try:
            pick_flows(chosen, marketer_share, store)
        except ValueError as exc:
            raise UserError(f"--flows: {exc}") from exc
        exclude: set[str] = set()
        if dev is not None:
            from finetune.transcripts import load_transcripts

            exclude = {t.customer_id for t in load_transcripts(dev) if t.customer_id}
        found, report = synthesize(store, n, seed, get_settings(), marketer_share=marketer_share,
                                   zh_share=zh_share, flows=chosen, exclude=exclude)
        write_transcripts(found, out, fmt)
        report["file"] = str(out)
        emit(report, as_json)

    @transcripts.command("evaluate")
    @cli_errors
    def evaluate_cmd(
        path: Path = typer.Option(..., "--transcripts", help="Held-out transcripts (e.g. OUT/data/dev.jsonl)."),
        base: str | None = typer.Option(None, help="Base model folder; default: the prepared SmolLM2."),
        adapter: str | None = typer.Option(None, help="LoRA adapter folder, or none for the base model."),
        limit: int | None = typer.Option(None, help="Score at most this many tool-call turns."),
        first_only: bool = typer.Option(False, "--first-call-only", help="Only each conversation's first tool call."),
        threads: int | None = typer.Option(None, help="torch CPU threads."),
        out: Path | None = typer.Option(None, "--out", help="Also write per-turn predictions here (JSONL)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Tool-name and exact-argument accuracy of a model (+ adapter) on each tool-call turn of the transcripts."""
        from finetune.evaluate import evaluate_transcripts, render_summary

        summary = evaluate_transcripts(path, base=base, adapter=None if adapter in (None, "none") else adapter,
                                       limit=limit, threads=threads, first_only=first_only,
                                       predictions_out=out)
        emit(summary, as_json, render_summary)

    app.add_typer(transcripts, name="transcripts")

    @app.command(
        "finetune",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )
    @cli_errors
    def finetune_cmd(ctx: typer.Context) -> None:
        """LoRA fine-tuning on transcripts (`shopdesk finetune --help` lists the options; see finetune/train.py)."""
        from finetune.train import run_cli

        report = run_cli(list(ctx.args))
        shown = {k: v for k, v in report.items() if k not in ("log_history", "arguments")}
        typer.echo(json.dumps(shown, indent=2, default=str))
