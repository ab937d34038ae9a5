"""Which tool functions each role may call. The agent offers exactly these; nothing else is reachable from a chat."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from types import ModuleType

log = logging.getLogger(__name__)

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
)
ROLE_TOOLS = {"customer": CUSTOMER_TOOLS, "marketer": MARKETER_TOOLS}

# Modules that define tools (each area writes its own); packages are searched one level down.
TOOL_MODULES = (
    "tools.orders",
    "tools.catalog",
    "tools.handoff",
    "tools.policy",
    "tools.search",
    "tools.reviews",
    "tools.recommend",
    "tools.analytics",
)


def _modules() -> list[ModuleType]:
    found: list[ModuleType] = []
    for name in TOOL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
                log.info("tool module %s is not there yet", name)
                continue
            raise
        found.append(module)
        if hasattr(module, "__path__"):
            for info in pkgutil.iter_modules(module.__path__):
                found.append(importlib.import_module(f"{name}.{info.name}"))
    return found


def tool_functions(role: str) -> list[Callable]:
    """The plain tool functions of `role`, in the order of ROLE_TOOLS; tools whose module is missing are logged."""
    if role not in ROLE_TOOLS:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLE_TOOLS)}")
    modules = _modules()
    out: list[Callable] = []
    for name in ROLE_TOOLS[role]:
        fn = next((getattr(m, name) for m in modules if callable(getattr(m, name, None))), None)
        if fn is None:
            log.warning("tool %s (role %s) is not available", name, role)
            continue
        out.append(fn)
    return out


def missing_tools(role: str) -> list[str]:
    present = {fn.__name__ for fn in tool_functions(role)}
    return [name for name in ROLE_TOOLS[role] if name not in present]
