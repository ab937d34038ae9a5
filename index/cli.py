"""CLI commands of the `index` area: building the search index and measuring search quality.

The `search products|reviews|insights` commands call the search tools, so they live in tools/cli.py.

    shopdesk index build [--json]
    shopdesk search evaluate [--set tests/data/relevance.jsonl] [--json]
    shopdesk search sentiment-eval [--set FILE] [--json]
"""

from __future__ import annotations

from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, command_group, emit


def register(app: typer.Typer) -> None:
    """Add the `index build` and `search evaluate|sentiment-eval` commands to `app`."""
    index = typer.Typer(help="Build the product and review search index (Chroma).", no_args_is_help=True)
    search = command_group(app, "search", "Search products and reviews; measure search quality.")

    @index.command("build")
    @cli_errors
    def build_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
        quiet: bool = typer.Option(False, help="No progress bars."),
    ) -> None:
        """Embed new or changed products and reviews into Chroma; remove deleted ones."""
        from index.build import build_index
        from shopdesk.settings import get_settings
        from store.db import open_store

        settings = get_settings()
        report = build_index(open_store(settings.db_url), settings, progress=not quiet)

        def text(r) -> str:
            return (
                f"products: {r.products.total} indexed ({r.products.embedded} embedded, "
                f"{r.products.metadata_updated} updated, {r.products.deleted} deleted)\n"
                f"reviews: {r.reviews.total} indexed ({r.reviews.embedded} embedded, "
                f"{r.reviews.metadata_updated} updated, {r.reviews.deleted} deleted)\n"
                f"{r.seconds} s into {r.target}"
            )

        emit(report, as_json, text)

    @search.command("evaluate")
    @cli_errors
    def evaluate_cmd(
        relevance: Path = typer.Option(None, "--set", help="Labelled relevance set (JSONL)."),
        details: bool = typer.Option(False, help="Include per-query scores."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """nDCG@10 and recall@10 for vector-only, BM25-only and hybrid ranking on the labelled set."""
        from index.evaluate import DEFAULT_SET, evaluate
        from index.search import IndexMissingError, SearchIndex
        from shopdesk.settings import get_settings

        try:
            report = evaluate(SearchIndex(get_settings()), relevance or DEFAULT_SET, details=details)
        except IndexMissingError as exc:
            raise UserError(str(exc)) from exc

        def text(r) -> str:
            lines = [f"{r.queries} queries, {r.labels} labels", f"{'mode':8} {'nDCG@10':>8} {'recall@10':>10}"]
            for mode, s in r.results.items():
                lines.append(f"{mode:8} {s.ndcg_at_10:8.4f} {s.recall_at_10:10.4f}")
            if r.unresolved_titles:
                lines.append(f"unresolved titles ({len(r.unresolved_titles)}): {r.unresolved_titles[:5]}")
            return "\n".join(lines)

        emit(report, as_json, text)

    @search.command("sentiment-eval")
    @cli_errors
    def sentiment_eval_cmd(
        labelled: Path = typer.Option(None, "--set", help="JSONL with text, title, label or rating."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Accuracy of the build-time sentiment analyser on labelled reviews (or on the store's rated reviews)."""
        from index.sentiment import evaluate_sentiment

        emit(evaluate_sentiment(labelled), as_json)

    app.add_typer(index, name="index")
