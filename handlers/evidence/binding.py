"""What a photo request, or a photo, proves beyond an action item (issue 17 item 7): the key result it is
linked to and, for a rhythm's request, the rhythm ("每周三 10:00 前：上传客户拜访照片"). Loaded once per
event and phrased in each reader's language, so the employee's request card and the manager's rating card
name the same key result."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cards.catalogue import Translator
from cards.rhythm import rhythm_phrase
from storage.models import ActionItem, KeyResult, KeyResultRhythm


@dataclass(frozen=True)
class Binding:
    key_result: str | None = None
    """The key result's title."""
    rhythm: tuple[int, str, str] | None = None
    """(weekday, due time, action) of the rhythm whose request this is."""

    def what(self, t: Translator, item: ActionItem | None) -> str | None:
        """What the photo is for: the action item's deliverable, else the rhythm, else nothing named."""
        if item is not None:
            return item.deliverable
        if self.rhythm is not None:
            return rhythm_phrase(t, *self.rhythm)
        return None


NO_BINDING = Binding()


async def binding_of(session: AsyncSession, *, key_result_id: int | None, rhythm_id: int | None) -> Binding:
    if key_result_id is None and rhythm_id is None:
        return NO_BINDING
    kr = await session.get(KeyResult, key_result_id) if key_result_id is not None else None
    rhythm = await session.get(KeyResultRhythm, rhythm_id) if rhythm_id is not None else None
    return Binding(
        key_result=kr.title if kr is not None else None,
        rhythm=(rhythm.weekday, rhythm.due_time, rhythm.text) if rhythm is not None else None,
    )
