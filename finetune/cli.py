"""CLI commands of the `finetune` area (registered on the `shopdesk` command)."""

import typer


def register(app: typer.Typer) -> None:
    pass
