"""Draft tokens for a greedy decode to check in one forward pass (speculative decoding by lookup).

Most of what the model writes in a tool call is the call's own form: after `{"order_id` comes `":`, after the id's
last character `"`, then `}}`, `</tool_call` and `>`. The grammar does not force these tokens (the JSON may have
whitespace, or go on with another key), so each was a decode step of its own, ~60% of a call's steps (session 33).
A decode pass costs about the same for one token as for ten on this CPU (reading the weights dominates), so the
decode loop guesses the next tokens, computes them in the pass with the token it knows, and keeps the guesses the
model's own greedy choice agrees with (`LocalChatModel._greedy`). The output is the one greedy decoding gives
without guesses; a wrong guess costs only its row in the pass.

The guesses come from an n-gram table: what followed the same last tokens in the call's canonical form
(agent.grammar.call_exemplars: each tool the grammar allows, written as the chat template writes a call) and in the
prompt (earlier calls of the conversation, ids and words the person typed). Both are fixed by the call, so the same
prompt and grammar always make the same passes.
"""

from __future__ import annotations

from collections.abc import Sequence

# the most tokens one pass checks: guessed tokens and the tokens the grammar forces after each
MAX_DRAFT = 12
# the longest run of last tokens a guess is looked up by (the longest one found wins)
NGRAM = 3


class Drafts:
    """An n-gram table over token sequences: the token that followed each run of 1 to NGRAM tokens, or None where
    different tokens followed it (a choice: after `{"name": "` comes one of several tools, after `"order_id": "`
    one of several orders). Nothing is guessed at a choice: a wrong guess there would cost the rows of everything
    the grammar forces after it.
    """

    def __init__(self) -> None:
        self.table: dict[tuple[int, ...], int | None] = {}

    def add(self, seq: Sequence[int], shortest: int = 1) -> Drafts:
        """Learn `seq`; runs shorter than `shortest` tokens are not keys (one token of a long prompt says little
        of what comes next).
        """
        table = self.table
        for i in range(1, len(seq)):
            for n in range(shortest, min(NGRAM, i) + 1):
                key = tuple(seq[i - n:i])
                if table.setdefault(key, seq[i]) != seq[i]:
                    table[key] = None
        return self

    def over(self, other: Drafts) -> Drafts:
        """This table with `other`'s entries added on top (where both have a run, `other`'s next token wins)."""
        self.table.update(other.table)
        return self

    def guess(self, context: Sequence[int]) -> int | None:
        """The token that followed the longest run of `context`'s last tokens found; None when none is found or
        that run is a choice.
        """
        for n in range(min(NGRAM, len(context)), 0, -1):
            key = tuple(context[-n:])
            if key in self.table:
                return self.table[key]
        return None
