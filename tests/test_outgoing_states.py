"""An outgoing message changes state only along OUTGOING_TRANSITIONS: every edge works, nothing else."""

from __future__ import annotations

import itertools

import pytest

from webapp.models import OUTGOING_TRANSITIONS, IllegalTransition, OutgoingMessage, OutgoingState

STARTS = [None, *OutgoingState]
PAIRS = list(itertools.product(STARTS, OutgoingState))


def at(state: OutgoingState | None) -> OutgoingMessage:
    row = OutgoingMessage()
    row.state = state.value if state is not None else None  # the setup, not a transition
    return row


def test_the_table_names_every_state():
    assert set(OUTGOING_TRANSITIONS) == set(STARTS)


@pytest.mark.parametrize("start, end", PAIRS, ids=lambda s: getattr(s, "value", str(s)))
def test_every_allowed_edge_moves_and_every_other_raises(start, end):
    row = at(start)
    if end == start or end in OUTGOING_TRANSITIONS[start]:
        row.move_to(end)
        assert row.state == end.value
    else:
        with pytest.raises(IllegalTransition):
            row.move_to(end)
        assert row.state == (start.value if start is not None else None)  # unchanged


def test_sent_and_cancelled_are_final():
    for final in (OutgoingState.SENT, OutgoingState.CANCELLED):
        assert OUTGOING_TRANSITIONS[final] == frozenset()


def test_a_cancelled_message_cannot_be_sent_after_all():
    row = at(OutgoingState.CANCELLED)
    with pytest.raises(IllegalTransition, match="cancelled to sending"):
        row.move_to(OutgoingState.SENDING)
