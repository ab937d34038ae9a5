"""Typed tool functions the agent calls (and the CLI reuses): orders, analytics, search, handoff."""
