"""Which tool functions each role may call. The agent offers exactly these; nothing else is reachable from a chat."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType

CUSTOMER_TOOLS = (
    "list_my_orders",
    "get_order_details",
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
    "get_product_details",
    "search_products",
    "search_reviews",
    "review_insights",
    "recommend_products",
    "transfer_to_human",
)
MARKETER_TOOLS = (
    "summarize_segments",
    "lookup_segment",
    "score_churn",
    "get_customer_profile",
    "draft_retention_offer",
    "review_insights",
    "search_products",
    "search_reviews",
    "get_customer_journey",
    "journey_funnel",
)
ROLE_TOOLS = {"customer": CUSTOMER_TOOLS, "marketer": MARKETER_TOOLS}
# Arguments the model is shown as required but a call may leave out: the tool then asks the person for them ("Why
# would you like to cancel: ...?"), instead of the model guessing one (agent.toolspec, agent.grammar.MAY_OMIT).
ASKED_IF_MISSING = {"cancel_pending_order": ("reason",)}
# Tools a conversation may always call, whatever a message narrows: a person can always be asked for.
ALWAYS_OFFERED = ("transfer_to_human",)
# Tools whose optional arguments are alternatives of which one must be given: called with none, they can only ask
# back ("Which segment or which customer do you mean?").
ONE_OF_ARGUMENTS = {
    "lookup_segment": ("segment", "customer"),
    "draft_retention_offer": ("segment", "customers"),
}

# Modules that define tools; packages are searched one level down.
TOOL_MODULES = (
    "tools.orders",
    "tools.catalog",
    "tools.handoff",
    "tools.policy",
    "tools.search",
    "tools.analytics",
)


def _modules() -> list[ModuleType]:
    found: list[ModuleType] = []
    for name in TOOL_MODULES:
        module = importlib.import_module(name)
        found.append(module)
        if hasattr(module, "__path__"):
            for info in pkgutil.iter_modules(module.__path__):
                found.append(importlib.import_module(f"{name}.{info.name}"))
    return found


def tool_functions(role: str) -> list[Callable]:
    """The plain tool functions of `role`, in the order of ROLE_TOOLS."""
    if role not in ROLE_TOOLS:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLE_TOOLS)}")
    modules = _modules()
    out: list[Callable] = []
    for name in ROLE_TOOLS[role]:
        fn = next((getattr(m, name) for m in modules if callable(getattr(m, name, None))), None)
        if fn is None:
            raise LookupError(f"tool {name} (role {role}) is defined in none of {', '.join(TOOL_MODULES)}")
        out.append(fn)
    return out
