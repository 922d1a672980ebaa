"""Key-result rhythms as series (issue 17 item 7): "每周三 10:00 前上传客户拜访照片" is a weekly occurrence
on which the evidence flow opens a photo request, due by the rhythm's time, in the person's own zone.

- *when*: the rhythm's weekday, at ``[schedule] reminder_time`` or one hour before the due time, whichever
  is earlier (a 09:00 deadline is asked for at 08:00), local time;
- *holidays*: a rhythm day that is a public holiday on the scheduler's calendar (or a company holiday from
  ``[schedule] extra_holidays``) is skipped, not moved: the next request comes a week later. Moving it
  would pile two requests into the first week back after a long holiday such as 国庆. A plain weekend day
  the person chose ("每周六") is not a holiday and keeps its request;
- *key*: ``("evidence.rhythm", person, "<rhythm id>:<day>")`` in ``scheduled_sends``, so a tick that fires
  twice, or two replicas, open one request per rhythm and day;
- *which*: active rhythms whose key result belongs to an active cycle, from the moment the rhythm was set
  (a day whose deadline had already passed then is not owed) to the cycle's last day.

Leave skips a day like any periodic prompt, and a day older than the catch-up horizon is recorded as missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.core.config import Settings
from bot.core.localtime import local_at
from bot.core.schedule import Job, JobArgs, RhythmArgs
from scheduler.cadence import Occurrence, PeriodicFlow
from scheduler.calendar import WorkCalendar
from storage.queries.kr_links import ScheduledRhythm

FLOW = "evidence.rhythm"
LEAD_MINUTES = 60
"""The least time between the request and the rhythm's deadline."""


def opens_at(due: time, reminder: time) -> time:
    """The local time the request goes out: ``reminder`` or one hour before ``due``, whichever is earlier."""
    minutes = due.hour * 60 + due.minute - LEAD_MINUTES
    return min(reminder, time(minutes // 60, minutes % 60) if minutes > 0 else time(0))


def due_time(text: str) -> time:
    """``KeyResultRhythm.due_time`` (``HH:MM``) as a time; a malformed value falls back to 10:00, the column's
    default, rather than stopping every rhythm of the tick."""
    try:
        return time.fromisoformat(text)
    except ValueError:
        return time(10)


@dataclass
class RhythmSeries:
    """Every ``weekday`` at ``at`` local time, except public holidays, from ``since`` to ``until``."""

    cal: WorkCalendar
    tz: str
    rhythm_id: int
    weekday: int
    at: time
    due: time
    since: datetime
    """When the rhythm was set: a day whose deadline lies before it is not owed."""
    until: date | None = None
    lookback: timedelta = timedelta(days=14)

    def between(self, first: date, last: date) -> list[Occurrence]:
        out: list[Occurrence] = []
        day = first + timedelta(days=(self.weekday - first.weekday()) % 7)
        stop = min(last, self.until) if self.until is not None else last
        while day <= stop:
            info = self.cal.day(day)
            holiday = not info.workday and info.holiday is not None
            if not holiday and local_at(day, self.due, self.tz) > self.since:
                out.append(
                    Occurrence(
                        period=f"{self.rhythm_id}:{day.isoformat()}",
                        day=day,
                        at=local_at(day, self.at, self.tz),
                        makeup=info.makeup,
                    )
                )
            day += timedelta(weeks=1)
        return out


@dataclass(frozen=True)
class RhythmFlow(PeriodicFlow):
    """A rhythm's series, handed to the evidence flow as ``RhythmArgs`` (which rhythm, which day)."""

    rhythm_id: int = 0

    def args(self, occ: Occurrence) -> JobArgs:
        return RhythmArgs(rhythm_id=self.rhythm_id, day=occ.day)


def rhythm_flow(row: ScheduledRhythm, settings: Settings, cal: WorkCalendar, tz: str) -> RhythmFlow:
    due = due_time(row.due_time)
    series = RhythmSeries(
        cal=cal,
        tz=tz,
        rhythm_id=row.rhythm_id,
        weekday=row.weekday % 7,
        at=opens_at(due, settings.schedule.reminder_time),
        due=due,
        since=row.created_at,
        until=row.ends_on,
    )
    return RhythmFlow(FLOW, Job.OPEN_RHYTHM_EVIDENCE, series, rhythm_id=row.rhythm_id)
