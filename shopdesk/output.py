"""Command-line plumbing: results as JSON for scripts (`--json`) or readable text, errors as one clear line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel


class UserError(Exception):
    """A problem the user must fix (bad file, bad option, missing model). The CLI prints it without a traceback."""


def to_jsonable(obj: Any) -> Any:
    """`obj` as plain JSON values (models dumped, decimals as floats, dates as ISO strings)."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def emit(result: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    """Print a command's result as JSON or as text."""
    if as_json:
        typer.echo(json.dumps(to_jsonable(result), indent=2, ensure_ascii=False))
    elif text is not None:
        typer.echo(text(result))
    else:
        typer.echo(json.dumps(to_jsonable(result), indent=2, ensure_ascii=False))


def cli_errors(fn: Callable) -> Callable:
    """Turn UserError (and the errors it stands for) into a one-line message and exit code 2."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def command_group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The sub-command group `name` of `app`, made on first use, so that several areas can add commands to it."""
    for group in app.registered_groups:
        if group.name == name:
            return group.typer_instance
    group = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group
