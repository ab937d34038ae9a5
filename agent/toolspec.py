"""Model-facing descriptions of the plain tool functions: name, one-line summary, JSON schema without `ctx`.

The schema is what the model sees; every call is validated against the pydantic model it is generated from before
the tool runs.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tools.context import ShopContext


@functools.cache  # LangChain builds a model of the whole signature to parse a docstring; sessions reuse the tools
def _docstring_parts(fn: Callable) -> tuple[str, dict[str, str]]:
    """The description (on one line) and the `Args:` descriptions of a Google-style docstring, as LangChain parses
    them.
    """
    if not inspect.getdoc(fn):
        return "", {}
    parsed = StructuredTool.from_function(fn, parse_docstring=True, error_on_invalid_docstring=False)
    args = {name: field.description for name, field in parsed.args_schema.model_fields.items() if field.description}
    return " ".join(parsed.description.split()), args


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


@dataclass
class ToolSpec:
    name: str
    fn: Callable
    description: str
    args_model: type[BaseModel]
    schema: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.schema}}

    def drop_undeclared(self, arguments: Any) -> tuple[Any, list[str]]:
        """`arguments` without the keys the schema does not declare, and the names dropped (declared keys are kept
        as given, so a wrong or missing required value still fails `validate`).
        """
        if not isinstance(arguments, dict):
            return arguments, []
        declared = self.schema.get("properties") or {}
        dropped = [k for k in arguments if k not in declared]
        return {k: v for k, v in arguments.items() if k in declared}, dropped

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Checked arguments, or ValueError with a message the model can act on.

        Strict, like the JSON schema the model sees: a string is not taken for a number, nor a number for a string.
        """
        if not isinstance(arguments, dict):
            raise ValueError(f"arguments of {self.name} must be a JSON object, got {json.dumps(arguments)[:80]}")
        try:
            parsed = self.args_model.model_validate(arguments, strict=True)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(map(str, err["loc"])) or "arguments"
            raise ValueError(f"invalid {where} for {self.name}: {err['msg']}") from None
        return {k: getattr(parsed, k) for k in self.args_model.model_fields if k in arguments or
                self.args_model.model_fields[k].is_required()}

    def __call__(self, ctx: ShopContext, arguments: dict[str, Any]) -> Any:
        return self.fn(ctx, **arguments)


def role_tool_schemas(role: str) -> list[dict[str, Any]]:
    """`role`'s tools as a session shows them to the model (OpenAI-style dicts), in the registry's order."""
    from tools.registry import tool_functions

    return [tool_spec(fn).openai() for fn in tool_functions(role)]


def tool_spec(fn: Callable) -> ToolSpec:
    """Describe `fn(ctx, ...)`: every parameter after the first (the injected context) becomes a schema field."""
    from tools.registry import ASKED_IF_MISSING

    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = list(sig.parameters.values())[1:]
    summary, arg_docs = _docstring_parts(fn)
    asked = ASKED_IF_MISSING.get(fn.__name__, ())
    fields: dict[str, Any] = {}
    shown: dict[str, Any] = {}  # what the model sees: an argument the tool asks for when missing is shown as required
    for p in params:
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, Field(default, description=arg_docs.get(p.name) or None))
        shown[p.name] = (_without_none(annotation), Field(..., description=arg_docs.get(p.name) or None)) \
            if p.name in asked else fields[p.name]
    model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    schema_model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **shown) \
        if asked else model
    schema = _strip_titles(schema_model.model_json_schema())
    schema.setdefault("properties", {})
    return ToolSpec(name=fn.__name__, fn=fn, description=summary, args_model=model, schema=schema)


def _without_none(annotation: Any) -> Any:
    """`X | None` as X."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in typing.get_args(annotation) else annotation
