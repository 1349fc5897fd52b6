"""The dialogue rules both front ends share, over a predictable engine."""

from __future__ import annotations

import pytest
from b24_harness import StubCandidate, StubReply

from faq_dialog import FaqDialog, Turn
from models import Outcome, Platform


class FixedEngine:
    """Answers every question with one prepared reply."""

    def __init__(self, reply: StubReply) -> None:
        self.reply = reply

    def ask(self, text: str) -> StubReply:
        return self.reply


def _candidate(faq_id: int, score: float, supported: bool) -> StubCandidate:
    return StubCandidate(
        faq_id, f"Вопрос {faq_id}?", "Ответ", "Кадры", 1, score, "", supported
    )


@pytest.mark.parametrize(
    ("supported", "offered"),
    [pytest.param(True, [1, 2], id="shared-words"), pytest.param(False, [], id="none")],
)
def test_no_answer_offers_only_entries_that_share_content(
    database, supported, offered
) -> None:
    # «курс биткоина сегодня» once got two unrelated entries as «Возможно…»
    for n in (1, 2):
        database.add_faq(f"Вопрос {n}?", "Ответ", "Кадры")
    candidates = tuple(_candidate(n, 88.0, supported) for n in (1, 2))
    reply = StubReply(
        Outcome.NO_ANSWER, None, (), candidates, None, "курс биткоина", "курс биткоина"
    )
    dialog = FaqDialog(FixedEngine(reply), database, Platform.BITRIX24, near_score=70)

    search = dialog.search(Turn(405, 405, "курс биткоина сегодня"))

    assert search.outcome is Outcome.NO_ANSWER
    assert [c.faq_id for c in search.near] == offered
