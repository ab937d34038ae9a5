"""The `shopdesk` command: one subcommand per job. Each area registers its own commands.

    shopdesk models prepare
    shopdesk store init --sample
    shopdesk index build
    shopdesk ui
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="shopdesk: AI assistant for online shops.", no_args_is_help=True, pretty_exceptions_enable=False)

# Each module defines register(app). Heavy imports (torch, chromadb, gradio) stay inside the commands.
AREAS = ("shopdesk.models", "shopdesk.auth", "store.cli", "tools.cli", "index.cli", "agent.cli", "finetune.cli",
         "ui.cli")


def _register_all() -> None:
    for name in AREAS:
        module = importlib.import_module(name)
        module.register(app)


_register_all()


def main() -> None:
    """Run the `shopdesk` command."""
    app()


if __name__ == "__main__":
    main()
