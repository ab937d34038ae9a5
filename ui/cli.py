"""CLI commands of the `ui` area (registered on the `shopdesk` command): the server, staff accounts and support figures.

shopdesk ui --port 7860
shopdesk staff add alice --role support          # password from a prompt, or from stdin: echo "$PW" | shopdesk staff add ...
shopdesk staff list
shopdesk staff disable alice
shopdesk support stats --json --since 2026-11-01
"""  # noqa: E501

import sys
from datetime import date, datetime

import typer

from shopdesk.output import UserError, cli_errors, emit


def _password() -> str:
    """The new password: asked twice at a terminal, else the first line of stdin (scripts)."""
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        raise UserError("no password on stdin")
    return line


def _day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} must be a date like 2026-11-01, not {value!r}") from None


def _store():
    from store.db import open_store

    return open_store()


def register(app: typer.Typer) -> None:
    """Add the `ui` command to the CLI."""

    @app.command("ui")
    @cli_errors
    def ui_command(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(7860, help="Port to listen on."),
    ) -> None:
        """Serve the support chat, the marketer console and the HTTP API on one port (http://HOST:PORT, /docs)."""
        import threading

        from shopdesk.settings import get_settings
        from ui.app import AppServices
        from ui.server import build_server, serve

        services = AppServices(get_settings())

        def warm() -> None:  # beside the server: the page opens at once, and a first turn waits for the load
            typer.echo("Loading the chat model and each role's prompt prefix in the background...", err=True)
            typer.echo(services.warm(), err=True)

        threading.Thread(target=warm, name="warm-up", daemon=True).start()
        serve(build_server(services=services), host=host, port=port)

    staff = typer.Typer(help="Staff accounts: support agents (the handoff inbox) and marketers (the console).",
                        no_args_is_help=True)

    @staff.command("add")
    @cli_errors
    def staff_add(
        name: str = typer.Argument(..., help="The name they sign in with."),
        role: str = typer.Option(..., "--role", help="support or marketer."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Add a staff account; the password comes from a prompt, or from stdin when piped."""
        from store.staff import add_staff

        store = _store()
        try:
            account = add_staff(store, name, role, _password())
        finally:
            store.dispose()
        emit({"name": account.name, "role": account.role}, as_json,
             lambda r: f"added {r['role']} account {r['name']}")

    @staff.command("list")
    @cli_errors
    def staff_list(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
        """List staff accounts (never their passwords)."""
        from store.staff import list_staff

        store = _store()
        try:
            rows = [{"name": a.name, "role": a.role, "active": a.active, "created_at": a.created_at,
                     "last_sign_in_at": a.last_sign_in_at} for a in list_staff(store)]
        finally:
            store.dispose()
        emit(rows, as_json, lambda rs: "\n".join(
            f"{r['name']:<24} {r['role']:<9} {'active' if r['active'] else 'disabled':<9} "
            f"last sign-in {_when(r['last_sign_in_at'])}" for r in rs) or "no staff accounts")

    @staff.command("disable")
    @cli_errors
    def staff_disable(name: str = typer.Argument(..., help="The account to disable.")) -> None:
        """Disable an account: it can no longer sign in, and its open sessions stop working."""
        from store.staff import set_active

        store = _store()
        try:
            set_active(store, name, False)
        finally:
            store.dispose()
        typer.echo(f"disabled {name}")

    support = typer.Typer(help="Support outcomes: conversations, containment, handoffs, writes, reply time.",
                          no_args_is_help=True)

    @support.command("stats")
    @cli_errors
    def support_stats_command(
        since: str | None = typer.Option(None, help="First day (YYYY-MM-DD); default: the first conversation."),
        until: str | None = typer.Option(None, help="Last day (YYYY-MM-DD); default: the last conversation."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Support figures from the turn log: `shopdesk support stats --json --since 2026-11-01`."""
        from store.supportstats import support_stats

        store = _store()
        try:
            stats = support_stats(store, _day(since, "--since"), _day(until, "--until"))
        finally:
            store.dispose()
        emit(stats, as_json, _stats_text)

    app.add_typer(staff, name="staff")
    app.add_typer(support, name="support")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def _stats_text(s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{x:.1%}"

    lines = [f"{s['since']} to {s['until']}: {s['conversations']} conversations",
             f"containment {pct(s['containment'])}, handoff rate {pct(s['handoff_rate'])}, "
             f"tickets open {s['tickets']['open']} / resolved {s['tickets']['resolved']}, "
             f"reopen rate {pct(s['reopen_rate'])} ({s['tickets']['reopened']} reopened)",
             "intents: " + (", ".join(f"{k} {v}" for k, v in s["intents"].items()) or "none"),
             f"reply time p50 {s['reply_time_s']['p50']} s, p95 {s['reply_time_s']['p95']} s "
             f"({s['reply_time_s']['turns']} turns)",
             "confirmed writes: " + (", ".join(f"{k} {v}" for k, v in s["confirmed_writes"].items()) or "none"),
             "tools used: " + (", ".join(f"{k} {v}" for k, v in s["tools_used"].items()) or "none"),
             "guards fired: " + ", ".join(f"{k} {v}" for k, v in s["guards"].items())]
    lines += [f"  {d['day']}  {d['conversations']:>4} conversations, {d['handed_off']:>3} handed off"
              for d in s["per_day"]]
    return "\n".join(lines)
