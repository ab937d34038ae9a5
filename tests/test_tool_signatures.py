"""Every tool the registry offers a role follows the tool convention: a new tool is checked without listing it here."""

from __future__ import annotations

import pytest

from tools.registry import ROLE_TOOLS, tool_functions


@pytest.mark.parametrize("role", sorted(ROLE_TOOLS))
def test_every_tool_of_every_role_takes_ctx_no_identity_and_documents_its_arguments(role, assert_tool_signature):
    tools = tool_functions(role)
    assert [fn.__name__ for fn in tools] == list(ROLE_TOOLS[role])
    for fn in tools:
        assert_tool_signature(fn, role)
