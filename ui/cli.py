"""CLI commands of the `ui` area (registered on the `shopdesk` command)."""

import typer

from shopdesk.output import cli_errors


def register(app: typer.Typer) -> None:
    @app.command("ui")
    @cli_errors
    def ui_command(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(7860, help="Port to listen on."),
    ) -> None:
        """Serve the support chat, the marketer console and the HTTP API on one port (http://HOST:PORT, /docs)."""
        from shopdesk.settings import get_settings
        from ui.server import build_server, serve

        serve(build_server(get_settings()), host=host, port=port)
