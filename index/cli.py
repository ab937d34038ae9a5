"""CLI commands of the `index` area: building the search index and searching it.

    shopdesk index build [--json]
    shopdesk search products "quiet soundbar under $300" [--k 10] [--category TVs] [--json]
    shopdesk search reviews "battery life" [--product "AirPods"] [--min-rating 1] [--max-rating 2] [--json]
    shopdesk search insights [--product ...] [--category ...] [--json]
    shopdesk search evaluate [--set tests/data/relevance.jsonl] [--json]
    shopdesk search sentiment-eval [--set FILE] [--json]
"""

from __future__ import annotations

from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, emit


def _context():
    from shopdesk.settings import get_settings
    from store.db import open_store
    from tools.context import ShopContext

    settings = get_settings()
    return ShopContext(store=open_store(settings.db_url), settings=settings, role="marketer")


def _call(fn, *args, **kwargs):
    """Tool errors are messages for the user at the CLI boundary."""
    from tools.errors import ToolError

    try:
        return fn(*args, **kwargs)
    except ToolError as exc:
        raise UserError(str(exc)) from exc


def register(app: typer.Typer) -> None:
    index = typer.Typer(help="Build the product and review search index (Chroma).", no_args_is_help=True)
    search = typer.Typer(help="Search products and reviews; measure search quality.", no_args_is_help=True)

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

    @search.command("products")
    @cli_errors
    def products_cmd(
        query: str = typer.Argument(..., help="What to look for; 'under $300', '4+ stars' become filters."),
        k: int = typer.Option(5, "--k", help="How many results."),
        category: str | None = typer.Option(None, help="Catalog category."),
        min_price: float | None = typer.Option(None, help="USD."),
        max_price: float | None = typer.Option(None, help="USD."),
        min_rating: float | None = typer.Option(None, help="Stars, 0-5."),
        in_stock: bool | None = typer.Option(None, "--in-stock/--any-stock", help="Only products in stock."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Hybrid (vector + BM25) product search. JSON: a list of {product_id, title, category, price, score}."""
        from tools.search import search_products

        result = _call(search_products, _context(), query, min_price=min_price, max_price=max_price,
                       category=category, min_rating=min_rating, in_stock=in_stock, k=k)
        rows = [
            {"product_id": p.product_id, "title": p.title, "category": p.category, "price": p.price, "score": p.score}
            for p in result.products
        ]
        emit(rows, as_json, lambda _r: result.render())

    @search.command("reviews")
    @cli_errors
    def reviews_cmd(
        query: str = typer.Argument(...),
        product: str | None = typer.Option(None, help="Product id or name."),
        min_rating: int | None = typer.Option(None),
        max_rating: int | None = typer.Option(None),
        k: int = typer.Option(5, "--k"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Review search with citations (review id, product, rating, date)."""
        from tools.search import search_reviews

        result = _call(search_reviews, _context(), query, product=product, min_rating=min_rating,
                       max_rating=max_rating, k=k)
        emit(result.reviews, as_json, lambda _r: result.render())

    @search.command("insights")
    @cli_errors
    def insights_cmd(
        product: str | None = typer.Option(None),
        category: str | None = typer.Option(None),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Rating distribution, sentiment share, top aspects and monthly trend, counted from the index."""
        from tools.search import review_insights

        result = _call(review_insights, _context(), product=product, category=category)
        emit(result, as_json, lambda r: r.render())

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
    app.add_typer(search, name="search")
