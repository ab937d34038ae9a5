"""Model-facing descriptions of the plain tool functions: name, one-line summary, JSON schema without `ctx`.

The schema is what the model sees and what every call is validated against before the tool runs.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tools.context import ShopContext


def _docstring_parts(fn: Callable) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(fn) or ""
    summary = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    args: dict[str, str] = {}
    match = re.search(r"^Args:\s*\n(.*?)(?:\n\s*\n|\Z)", doc, re.S | re.M)
    if match:
        current = None
        for line in match.group(1).splitlines():
            m = re.match(r"\s*(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
            if m and (not line.startswith(" " * 8)):
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current:
                args[current] += " " + line.strip()
    return summary, args


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
        as given, so a wrong or missing required value still fails `validate`)."""
        if not isinstance(arguments, dict):
            return arguments, []
        declared = self.schema.get("properties") or {}
        dropped = [k for k in arguments if k not in declared]
        return {k: v for k, v in arguments.items() if k in declared}, dropped

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Checked arguments, or ValueError with a message the model can act on."""
        if not isinstance(arguments, dict):
            raise ValueError(f"arguments of {self.name} must be a JSON object, got {json.dumps(arguments)[:80]}")
        try:
            jsonschema.validate(arguments, self.schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
            raise ValueError(f"invalid {where} for {self.name}: {exc.message}") from None
        try:
            parsed = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"invalid {'.'.join(map(str, err['loc']))} for {self.name}: {err['msg']}") from None
        return {k: getattr(parsed, k) for k in self.args_model.model_fields if k in arguments or
                self.args_model.model_fields[k].is_required()}

    def __call__(self, ctx: ShopContext, arguments: dict[str, Any]) -> Any:
        return self.fn(ctx, **arguments)


def tool_spec(fn: Callable) -> ToolSpec:
    """Describe `fn(ctx, ...)`: every parameter after the first (the injected context) becomes a schema field."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = list(sig.parameters.values())[1:]
    summary, arg_docs = _docstring_parts(fn)
    fields: dict[str, Any] = {}
    for p in params:
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, Field(default, description=arg_docs.get(p.name) or None))
    model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    schema = _strip_titles(model.model_json_schema())
    schema.setdefault("properties", {})
    return ToolSpec(name=fn.__name__, fn=fn, description=summary, args_model=model, schema=schema)
