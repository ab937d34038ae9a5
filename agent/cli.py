"""CLI commands of the `agent` area (registered on the `shopdesk` command)."""

import typer


def register(app: typer.Typer) -> None:
    pass
