"""CLI commands of the `ui` area (registered on the `shopdesk` command)."""

import typer


def register(app: typer.Typer) -> None:
    pass
