"""The dispatcher: dedupe, resolve the sender, route to a handler, and commit everything in one transaction.

Order of business for each event (DESIGN.md, "The way data flows"):
1. insert the inbound event under its unique (platform, event id): a duplicate returns the stored answer;
2. resolve the sender to an active person: an unknown sender gets a polite card and nothing else;
3. route (typed action payload, command, conversation state, fallback text, image);
4. commit the handler's rows, its outbox rows and the stored answer together.
A ``Refused`` rolls the handler's work back and records only the answer.

When something fails, nothing is answered 200-and-forgotten (``dispatch``):
- a *transient* database fault (``storage.db.is_transient``: a dead connection, a serialization failure, a
  deadlock, a lock timeout…) rolls everything back and the whole event is tried once more in a fresh
  session; if that fails too, ``RetryLater`` is raised and the ingress answers so that the platform
  delivers the event again (HTTP 503 on callbacks, an error frame or no ack on the long connections);
- any other exception is a bug: the handler's work is rolled back, the sender is told with the error
  toast (by message where a toast cannot be seen), and the event is recorded as failed (its answer carries
  the exception's type; the traceback is logged at error level and counted under
  ``perfloop_callbacks{result="failed"}``). A redelivery gets the same answer instead of running the bug
  twice; the sender was told to try again.

Card clicks go through group commit (issue 22; ``bot/app/group_commit.py``, ``[clicks]``): the clicks that
arrive while the database is busy are processed in one transaction — claimed in one statement, their senders
looked up in one, their audit and outbox rows inserted in one per table, their answers recorded in one — and
each gets exactly the answer and the effects it would get alone (``_dispatch_group`` says how a refusal, a
bug, a duplicate or a transient fault in a group is kept to its own click). A crash at any point loses
nothing and applies nothing twice: the group is one transaction, and every click in it is answered only after
the commit. Other events (chat messages, images, member changes) go one at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached

from adapters.base import CallbackAnswer
from adapters.registry import AdapterRegistry
from bot.app import group_session, inbound
from bot.app.group_commit import AGAIN, GroupCommit, Outcome
from bot.core import chatforms, notify
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.context import Context, Deferred, Outbox, Refused, Reply
from bot.core.events import CardAction, Event, ImageMessage, MemberChanged, TextMessage
from bot.core.router import Router
from bot.core.schedule_port import SchedulePort
from cards.actions import InvalidAction, unpack
from cards.catalogue import Translator
from cards.model import Card
from cards.notice import notice_card
from handlers.help.help import help_reply
from storage.db import is_transient
from storage.models import Base, ConversationState, InboundEvent, Person, Workspace

log = logging.getLogger("perfloop.dispatcher")

MemberHook = Callable[[AsyncSession, Workspace, MemberChanged], Awaitable[None]]
JobFn = Callable[[Context], Awaitable[None]]

ATTEMPTS = 2
"""Tries per event within one request when the database fails transiently: the first, and one more in a
fresh session (the pool has dropped the dead connection by then, and pre-ping vets the next one)."""
MAX_FAILURES_PER_GROUP = 3
"""Refused or failed clicks after which the rest of a group is processed one by one: each refusal costs the
others one more run, so a group full of refusals must not cost its size squared."""


class RetryLater(Exception):
    """The event met a transient fault twice and nothing of it was recorded: the platform must deliver it
    again. The ingress turns this into HTTP 503 for a callback; on the Feishu long connection and the
    DingTalk stream it propagates into the SDK, which answers the frame with an error or does not ack it."""


class FailedAnswer(CallbackAnswer):
    """The error toast for an event whose handler failed (a bug), recorded as failed; the ingress counts
    it as ``failed`` rather than ``refused``."""


class _LookUp:
    """No sender given: look them up in the event's own session."""


_LOOK_UP = _LookUp()


class Dispatcher:
    def __init__(
        self,
        *,
        factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        router: Router,
        registry: AdapterRegistry,
        clock: Clock,
        schedule: SchedulePort | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.router = router
        self.registry = registry
        self.clock = clock
        self.member_hook: MemberHook | None = None
        self.schedule = schedule
        """The scheduler's answers for the flows (``ctx.schedule``)."""
        self._workspaces: dict[tuple[str, str], Workspace] = {}
        clicks = settings.clicks
        self.clicks: GroupCommit[CardAction, CallbackAnswer] | None = None
        """Card clicks go through group commit (``[clicks] group_commit``); other events one at a time."""
        if clicks.group_commit:
            lanes = clicks.lanes or (1 if factory.kw["bind"].dialect.name == "sqlite" else 4)
            self.clicks = GroupCommit(
                self._dispatch_group,
                lanes=lanes,
                max_items=clicks.max_group,
                stall=clicks.lane_stall_ms / 1000,
            )

    async def close(self) -> None:
        """Let the click groups in flight finish (they hold a connection and their clicks' answers)."""
        if self.clicks is not None:
            await self.clicks.close()

    # ---------------------------------------------------------------- events
    async def dispatch(self, event: Event) -> CallbackAnswer:
        """Process one event and say what the platform should be told; raises ``RetryLater`` when the
        platform must deliver it again (see the module docstring for the failure policy)."""
        if self.clicks is not None and isinstance(event, CardAction):
            return await self.clicks.submit(event)
        return await self._dispatch_alone(event)

    async def _dispatch_alone(self, event: Event) -> CallbackAnswer:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._attempt(event)
            except Exception as exc:
                if not is_transient(exc):
                    return await self._record_failure(event, exc)
                # A pool timeout has already waited pool_timeout seconds: waiting again helps nobody.
                final = attempt == ATTEMPTS or isinstance(exc, sa_exc.TimeoutError)
                _log_transient(event, exc, attempt, final=final)
                if final:
                    raise RetryLater(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, event: Event) -> CallbackAnswer:
        """One try, in its own session: the event and its effects, or the stored answer of a duplicate, or
        the refusal recorded."""
        try:
            return await self._dispatch(event)
        except _Duplicate:
            return await self._stored_answer(event)
        except Refused as refused:
            return await self._record_refusal(event, refused)

    # ---------------------------------------------------------------- card clicks, a group at a time
    async def _dispatch_group(self, events: list[CardAction]) -> list[Outcome[CallbackAnswer]]:
        """Process a group of clicks in one transaction; each gets exactly the answer it would get alone.

        The group runs without savepoints. When one click is refused or its handler fails, the whole
        transaction is rolled back, that click's refusal or failure is recorded on its own (exactly as for a
        click processed alone, and its handler is not run again), and the others are processed again as a
        group: they may have seen its writes. A transient database fault retries the group once, then every
        click in it is answered ``RetryLater``. A fault no click can be blamed for (at commit) splits the
        group into single clicks. A group still running after ``[clicks] group_budget_ms`` commits what is
        done and hands the rest back to the queue, so one slow handler holds back few others."""
        out: dict[int, Outcome[CallbackAnswer] | _Duplicate] = {}
        todo = list(range(len(events)))
        attempt = failed = 0
        while todo:
            try:
                done = await self._group_once([events[i] for i in todo])
            except _ClickFailed as f:
                index = todo.pop(f.index)
                out[index] = await self._settle(events[index], f.error)
                failed += 1
                if failed >= MAX_FAILURES_PER_GROUP:  # the rest one by one: none is run again
                    for i in todo:
                        out[i] = (await self._dispatch_group([events[i]]))[0]
                    todo = []
                continue
            except Exception as exc:
                if not is_transient(exc):  # nobody to blame: one by one, so the culprit fails alone
                    if len(todo) == 1:
                        out[todo[0]] = await self._settle(events[todo[0]], exc)
                    else:
                        for i in todo:
                            out[i] = (await self._dispatch_group([events[i]]))[0]
                    break
                attempt += 1
                # A pool timeout has already waited pool_timeout seconds: waiting again helps nobody.
                final = attempt == ATTEMPTS or isinstance(exc, sa_exc.TimeoutError)
                _log_transient(events[todo[0]], exc, attempt, final=final, group=len(todo))
                if not final:
                    continue
                out.update((i, RetryLater(f"{type(exc).__name__}: {str(exc)[:200]}")) for i in todo)
                break
            out.update(zip(todo, done, strict=True))
            break
        results: list[Outcome[CallbackAnswer]] = []
        for i, event in enumerate(events):
            result = out[i]
            if isinstance(result, _Duplicate):
                try:
                    result = await self._unless_failing(self._stored_answer(event), event)
                except RetryLater as exc:
                    result = exc
            results.append(result)
        return results

    async def _group_once(self, events: list[CardAction]) -> list[Outcome[CallbackAnswer] | _Duplicate]:
        """One try at a group: claim every click, look the senders up, run each handler, insert the rows
        they deferred, record the answers, commit. Raises ``_ClickFailed`` (rolled back) for the first click
        that is refused or fails."""
        started = time.monotonic()
        budget = self.settings.clicks.group_budget_ms / 1000
        results: list[Outcome[CallbackAnswer] | _Duplicate] = []
        answers: list[inbound.Answer] = []
        deferred_rows: list[Base] = []
        async with self._engine.connect() as conn, conn.begin():
            claimed = await inbound.claim_many(conn, events, self.clock.now())
            # One session for the group, emptied after each click: each starts from what is committed to the
            # transaction, as it would alone, without paying for a session of its own.
            session = self.factory(
                bind=conn,
                join_transaction_mode="rollback_only",
                sync_session_class=group_session.GroupSession,
            )
            async with session:
                senders = await group_session.senders(
                    session, [e for e in events if (e.platform, e.event_id) in claimed], self._workspace
                )
                for index, event in enumerate(events):
                    if index and time.monotonic() - started > budget:
                        # Out of time: the rest go back to the queue, and their claims with them.
                        await inbound.release(conn, list(claimed.values()))
                        results.extend([AGAIN] * (len(events) - index))
                        break
                    inbound_id = claimed.pop((event.platform, event.event_id), None)
                    if inbound_id is None:
                        results.append(_Duplicate())
                        continue
                    # A sender's second click in a group is looked up again: the first may have changed them.
                    key = (event.platform, event.workspace, event.sender_id)
                    sender = senders.pop(key) if key in senders else _LOOK_UP
                    deferred = session.info["deferred"] = Deferred(session)
                    try:
                        answer, person_id = await self._process(
                            session, event, sender=sender, deferred=deferred
                        )
                        await session.flush()
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        raise _ClickFailed(index, exc) from exc
                    session.expunge_all()
                    deferred_rows.extend(deferred.rows)
                    answers.append((inbound_id, _answer_dict(answer), person_id))
                    results.append(answer)
                session.info.pop("deferred", None)
                if deferred_rows:
                    session.add_all(deferred_rows)  # one INSERT per table for the whole group
                    await session.flush()
            await inbound.record_answers(conn, answers)
        return results

    async def _settle(self, event: Event, error: Exception) -> Outcome[CallbackAnswer]:
        """Record a click that was refused or failed, on its own (its handler is not run again). When even
        that cannot be written, the platform is asked to deliver it again."""
        try:
            if isinstance(error, Refused):
                return await self._record_refusal(event, error)
            return await self._record_failure(event, error)
        except RetryLater as exc:
            return exc
        except Exception as exc:
            return self._cannot_record(event, exc)

    @property
    def _engine(self) -> AsyncEngine:
        bind = self.factory.kw["bind"]
        assert isinstance(bind, AsyncEngine)
        return bind

    async def _record_failure(self, event: Event, exc: Exception) -> CallbackAnswer:
        """A handler bug: log it with its traceback, record the event as failed with the error answer, and
        tell the sender (by message where a toast is not seen). If even that cannot be written, the platform
        is asked to deliver again rather than the event being dropped."""
        log.error(
            "handler failed",
            exc_info=exc,
            extra={"event_id": event.event_id, "platform": event.platform, "kind": event.kind},
        )
        t = Translator(self.settings.i18n.default_locale)
        answer = FailedAnswer(toast=t("common.error"), toast_kind="error")
        try:
            async with self.factory() as session, session.begin():
                tell = not isinstance(event, MemberChanged) and self._sees_no_toast(event)
                await self._record_answer(
                    session,
                    event,
                    {**_answer_dict(answer), "error": type(exc).__name__},
                    tell=notice_card(t, t("common.refused_title"), t("common.error"), colour="red")
                    if tell
                    else None,
                )
        except IntegrityError:
            # Recorded meanwhile by a concurrent delivery of the same event: answer what that one stored.
            return await self._unless_failing(self._stored_answer(event), event)
        except Exception as failed:
            raise self._cannot_record(event, failed) from failed
        return answer

    async def _unless_failing(self, pending: Awaitable[CallbackAnswer], event: Event) -> CallbackAnswer:
        try:
            return await pending
        except Exception as failed:
            raise self._cannot_record(event, failed) from failed

    @staticmethod
    def _cannot_record(event: Event, failed: Exception) -> RetryLater:
        log.warning(
            "could not record the failed event: asking the platform to deliver again",
            extra={"event_id": event.event_id, "error": f"{type(failed).__name__}: {str(failed)[:200]}"},
        )
        return RetryLater(type(failed).__name__)

    async def _dispatch(self, event: Event) -> CallbackAnswer:
        async with self.factory() as session, session.begin():
            inbound_id = await self._claim_event(session, event)
            if inbound_id is None:
                raise _Duplicate()
            answer, person_id = await self._process(session, event)
            await session.execute(
                update(InboundEvent)
                .where(InboundEvent.id == inbound_id)
                .values(answer=_answer_dict(answer), person_id=person_id)
            )
            return answer

    async def _claim_event(self, session: AsyncSession, event: Event) -> int | None:
        """Insert the event under its unique key in one round trip; None when it was already there.

        ``ON CONFLICT DO NOTHING`` instead of a savepoint around a plain insert: on PostgreSQL a concurrent
        duplicate waits for the first transaction and then finds the row, exactly as the unique index would
        make it fail, at a third of the round trips."""
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(InboundEvent)
            .values(
                platform=event.platform,
                event_id=event.event_id,
                kind=event.kind,
                answer={},
                received_at=self.clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["platform", "event_id"])
            .returning(InboundEvent.id)
        )
        return await session.scalar(stmt)

    async def _process(
        self,
        session: AsyncSession,
        event: Event,
        *,
        sender: Person | _LookUp | None = _LOOK_UP,
        deferred: Deferred | None = None,
    ) -> tuple[CallbackAnswer, int | None]:
        """Route one event in ``session``. ``sender``: the person already looked up (a group does it for all
        its clicks at once), None for an unknown sender. ``deferred``: where the click's audit and outbox rows
        wait for the end of its group."""
        workspace = await self._workspace(session, event.platform, event.workspace)
        if isinstance(event, MemberChanged):
            if self.member_hook is not None:
                await self.member_hook(session, workspace, event)
            return CallbackAnswer(), None
        if isinstance(sender, _LookUp):
            person = await self._person(session, workspace, event.sender_id)
        else:
            person = sender
            if person is not None:
                session.add(person)  # detached and unchanged: attached again, no SQL
        if person is None:
            log.warning(
                "event from unknown user", extra={"platform": event.platform, "sender": event.sender_id}
            )
            return await self._unknown_user(session, workspace, event), None
        ctx = self._context(session, workspace, person, event, deferred=deferred)
        reply = await self._route(ctx, event)
        return self._deliver_reply(ctx, event, reply), person.id

    async def _route(self, ctx: Context, event: Event) -> Reply | None:
        if isinstance(event, CardAction):
            try:
                payload = unpack(event.value)
            except InvalidAction:
                raise ctx.refuse("common.invalid_action") from None
            handler = self.router.actions.get(payload.action_id)
            if handler is None:
                raise ctx.refuse("common.invalid_action")
            builder = self.router.forms.get(payload.action_id)
            adapter = self.registry.get(event.platform) if event.platform in self.registry else None
            if builder is not None and adapter is not None and not adapter.supports_text_inputs:
                questions = chatforms.missing_inputs(await builder(ctx, payload), dict(event.form))
                if questions:
                    timeout = self.settings.conversation.answer_timeout_minutes
                    ctx.outbox.send(ctx.person, await chatforms.start(ctx, event, questions, timeout))
                    return Reply(toast=ctx.t("chatform.started"), toast_kind="info")
            return await handler(ctx, payload)
        if isinstance(event, TextMessage):
            return await self._route_text(ctx, event.text.strip())
        if isinstance(event, ImageMessage):
            for image_handler in self.router.images:
                reply = await image_handler(ctx, event.media_ref)
                if reply is not None:
                    return reply
            return Reply(toast=ctx.t("common.nothing_open"), toast_kind="info")
        return None

    async def _route_text(self, ctx: Context, text: str) -> Reply | None:
        state = await ctx.session.scalar(
            select(ConversationState).where(ConversationState.person_id == ctx.person.id)
        )
        if state is not None and state.expires_at <= ctx.now:
            await ctx.session.delete(state)
            if state.kind == chatforms.KIND:
                ctx.outbox.send(
                    ctx.person,
                    notice_card(ctx.t, ctx.t("common.ok"), ctx.t("chatform.expired"), colour="orange"),
                )
            state = None
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            if name.lower() in ("cancel", "取消"):
                if state is None:
                    return Reply(toast=ctx.t("chatform.nothing_to_cancel"), toast_kind="info")
                await ctx.session.delete(state)
                return Reply(toast=ctx.t("chatform.cancelled"), toast_kind="info")
            command = self.router.commands.get(name.lower())
            if command is None:
                return Reply(toast=ctx.t("common.unknown_command", command="/" + name), toast_kind="warning")
            return await command(ctx, args.strip())
        if state is not None:
            if state.kind == chatforms.KIND:
                return await self._continue_chat_form(ctx, state, text)
            if state.kind in self.router.states:
                return await self.router.states[state.kind](ctx, state, text)
            await ctx.session.delete(state)
        for text_handler in self.router.texts:
            reply = await text_handler(ctx, text)
            if reply is not None:
                return reply
        return await help_reply(ctx)

    async def _continue_chat_form(self, ctx: Context, state: ConversationState, text: str) -> Reply | None:
        data = dict(state.data)
        pending: list[dict[str, Any]] = list(data["pending"])
        answers: dict[str, Any] = dict(data["answers"])
        total = int(data.get("total") or len(pending) + len(answers))
        question = pending[0]
        value, error = chatforms.parse_answer(question, text, ctx.today())
        index = total - len(pending) + 1
        if error is not None:
            return Reply(
                card=chatforms.question_card(ctx, question, total=total, index=index, error=ctx.t(error))
            )
        pending = chatforms.record(question, value, answers, data) + pending[1:]
        if pending:
            state.data = {**data, "pending": pending, "answers": answers, "total": total}
            return Reply(card=chatforms.question_card(ctx, pending[0], total=total, index=index + 1))
        await ctx.session.delete(state)
        assert ctx.event is not None
        done = CardAction(
            platform=ctx.event.platform,
            workspace=ctx.event.workspace,
            event_id=f"{data['event_id']}:form"[:200],
            sender_id=ctx.person.platform_user_id,
            value=data["value"],
            form={k: v for k, v in answers.items() if v != ""},
            message_ref=data.get("message_ref"),
            received_at=ctx.now,
        )
        ctx.event = done
        payload = unpack(done.value)
        reply = await self.router.actions[payload.action_id](ctx, payload)
        private = reply is not None and reply.private
        if reply is not None and reply.card is not None and done.message_ref and not private:
            ctx.outbox.update_ref(done.sender_id, done.message_ref, reply.card)
        again = await chatforms.revisit(ctx, data, answers, reply)
        if again is not None:
            return Reply(card=again)
        return Reply(
            toast=(reply.toast if reply else None) or ctx.t("common.ok"),
            toast_kind=reply.toast_kind if reply else "success",
            private=private,
        )

    def _deliver_reply(self, ctx: Context, event: Event, reply: Reply | None) -> CallbackAnswer:
        if reply is None:
            return CallbackAnswer()
        adapter = self.registry.get(event.platform) if event.platform in self.registry else None
        if isinstance(event, CardAction):
            if reply.card is not None and (adapter is None or not adapter.answers_card_inline):
                if reply.private:
                    # An echo of an anonymous answer never becomes an outbox row under the rater (issue 16
                    # #3): the clicked card stays as it was; where no toast shows, the toast goes by message.
                    if reply.toast and adapter is not None and not adapter.shows_toasts:
                        ctx.outbox.send(
                            ctx.person,
                            notice_card(
                                ctx.t, ctx.t("common.ok"), reply.toast, colour=_colour(reply.toast_kind)
                            ),
                        )
                elif event.message_ref:
                    ctx.outbox.update_ref(event.sender_id, event.message_ref, reply.card)
                return CallbackAnswer(toast=reply.toast, toast_kind=reply.toast_kind)
            kind = _PrivateAnswer if reply.private else CallbackAnswer
            return kind(toast=reply.toast, toast_kind=reply.toast_kind, card=reply.card)
        # Chat messages have no toast: whatever we have to say goes back as a message.
        if reply.card is not None and not reply.private:
            ctx.outbox.send(ctx.person, reply.card)
        elif reply.toast:
            ctx.outbox.send(
                ctx.person,
                notice_card(ctx.t, ctx.t("common.ok"), reply.toast, colour=_colour(reply.toast_kind)),
            )
        return CallbackAnswer(toast=reply.toast, toast_kind=reply.toast_kind)

    async def _unknown_user(
        self, session: AsyncSession, workspace: Workspace, event: Event
    ) -> CallbackAnswer:
        t = Translator(self.settings.i18n.default_locale)
        outbox = self._outbox(session, workspace)
        title, body = t("common.unknown_user_title"), t("common.unknown_user_body")
        notice = notice_card(t, title, body, colour="orange")
        try:
            # The notice goes out once a day per sender; a second event that day finds the dedupe key taken,
            # which must cost only the notice (in a savepoint), not the whole event.
            async with session.begin_nested():
                outbox.send_to_platform_id(
                    event.sender_id,
                    notice,
                    dedupe_key=f"unknown-user:{event.platform}:{event.workspace}:{event.sender_id}:"
                    f"{self.clock.now():%Y-%m-%d}",
                )
                await session.flush()
        except IntegrityError:
            pass
        return CallbackAnswer(toast=t("common.unknown_user_body"), toast_kind="warning")

    async def _record_refusal(self, event: Event, refused: Refused) -> CallbackAnswer:
        answer = CallbackAnswer(toast=refused.message, toast_kind=refused.kind, card=refused.card)
        log.info("refused", extra={"event_id": event.event_id, "reason": refused.message})
        try:
            async with self.factory() as session, session.begin():
                tell: Card | None = None
                if self._sees_no_toast(event):
                    t = Translator(self.settings.i18n.default_locale)
                    tell = refused.card or notice_card(
                        t, t("common.refused_title"), refused.message, colour="orange"
                    )
                await self._record_answer(session, event, _answer_dict(answer), tell=tell)
        except IntegrityError:
            return await self._stored_answer(event)
        return answer

    def _sees_no_toast(self, event: Event) -> bool:
        """Chat messages, and clicks on platforms that cannot show a toast: the sender hears by message."""
        adapter = self.registry.get(event.platform) if event.platform in self.registry else None
        return not isinstance(event, CardAction) or adapter is None or not adapter.shows_toasts

    async def _record_answer(
        self, session: AsyncSession, event: Event, answer: dict[str, Any], *, tell: Card | None
    ) -> None:
        """Record an event whose handler did not commit (refused, failed) with its answer, so a redelivery
        gets that answer; ``tell`` goes to the sender as a message, in the same transaction."""
        session.add(
            InboundEvent(
                platform=event.platform,
                event_id=event.event_id,
                kind=event.kind,
                answer=answer,
                received_at=self.clock.now(),
            )
        )
        if tell is not None:
            workspace = await self._workspace(session, event.platform, event.workspace)
            self._outbox(session, workspace).send_to_platform_id(event.sender_id, tell)

    async def _stored_answer(self, event: Event) -> CallbackAnswer:
        async with self.factory() as session:
            stored = await session.scalar(
                select(InboundEvent).where(
                    InboundEvent.platform == event.platform, InboundEvent.event_id == event.event_id
                )
            )
        log.info("duplicate event ignored", extra={"event_id": event.event_id, "platform": event.platform})
        if stored is None:
            return CallbackAnswer()
        return _answer_from_dict(stored.answer)

    # ---------------------------------------------------------------- jobs
    async def run_for_person(self, person_id: int, fn: JobFn) -> None:
        """Run scheduled work for one person in its own transaction, through the same context as events."""
        async with self.factory() as session, session.begin():
            person = await session.get(Person, person_id)
            if person is None:
                raise LookupError(f"no person {person_id}")
            workspace = await session.get(Workspace, person.workspace_id)
            assert workspace is not None
            ctx = self._context(session, workspace, person, None)
            await fn(ctx)
            # Scheduled messages (prompts, reminders, escalations) wait for the end of each recipient's
            # quiet hours; answers to something a person just did are never held, so this runs only for jobs.
            await notify.hold_written(ctx)

    def context_for(self, session: AsyncSession, workspace: Workspace, person: Person) -> Context:
        return self._context(session, workspace, person, None)

    # ---------------------------------------------------------------- helpers
    def _context(
        self,
        session: AsyncSession,
        workspace: Workspace,
        person: Person,
        event: Event | None,
        *,
        deferred: Deferred | None = None,
    ) -> Context:
        fetch = None
        if event is not None and event.platform in self.registry:
            adapter = self.registry.get(event.platform)
            limit = self.settings.media.max_image_bytes

            async def fetch(ref: str) -> bytes:
                return await adapter.download_media(ref, max_bytes=limit)

        return Context(
            session=session,
            person=person,
            workspace=workspace,
            settings=self.settings,
            now=self.clock.now(),
            outbox=self._outbox(session, workspace, deferred=deferred),
            event=event,
            fetch_media=fetch,
            schedule=self.schedule,
            deferred=deferred,
        )

    def _outbox(
        self, session: AsyncSession, workspace: Workspace, *, deferred: Deferred | None = None
    ) -> Outbox:
        return Outbox(
            session=session,
            workspace=workspace,
            recipients_per_call=self.registry.recipients_per_call().get(workspace.platform, 1),
            interactive_recipients_per_call=self.registry.interactive_recipients_per_call().get(
                workspace.platform
            ),
            now=self.clock.now(),
            deferred=deferred,
        )

    async def _workspace(self, session: AsyncSession, platform: str, app_id: str) -> Workspace:
        """Workspaces are created once and never change or go away: after the first lookup the row is merged
        into the session from a cache instead of being read again on every event."""
        cached = self._workspaces.get((platform, app_id))
        if cached is not None:
            return await session.merge(cached, load=False)
        ws = await session.scalar(
            select(Workspace).where(Workspace.platform == platform, Workspace.app_id == app_id)
        )
        if ws is not None:
            detached = Workspace(
                id=ws.id, platform=ws.platform, app_id=ws.app_id, name=ws.name, created_at=ws.created_at
            )
            make_transient_to_detached(detached)
            self._workspaces[(platform, app_id)] = detached
        if ws is None:
            ws = Workspace(platform=platform, app_id=app_id, name=f"{platform}:{app_id}")
            session.add(ws)
            await session.flush()
        return ws

    async def _person(self, session: AsyncSession, workspace: Workspace, user_id: str) -> Person | None:
        return await session.scalar(
            select(Person).where(
                Person.workspace_id == workspace.id,
                Person.platform_user_id == user_id,
                Person.active.is_(True),
            )
        )


class _Duplicate(Exception):
    """The event's (platform, event id) is already recorded: answer with what was stored."""


class _ClickFailed(Exception):
    """A click of a group was refused or its handler failed: the group is rolled back and tried without it."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"click {index} of the group: {type(error).__name__}")
        self.index = index
        self.error = error


class _PrivateAnswer(CallbackAnswer):
    """An answer whose card echoes an anonymous answer (``Reply.private``): shown once, stored without the
    card, so ``inbound_events`` never holds a rater's answer under the rater's id (issue 16 #3)."""


def _log_transient(event: Event, exc: Exception, attempt: int, *, final: bool, group: int = 1) -> None:
    extra = {
        "event_id": event.event_id,
        "platform": event.platform,
        "attempt": attempt,
        "group": group,
        "error": f"{type(exc).__name__}: {str(exc)[:200]}",
    }
    if final:
        log.warning("transient database error: asking the platform to deliver again", extra=extra)
    else:
        log.warning("transient database error: trying the event once more", extra=extra)


def _colour(kind: str) -> Any:
    return {"error": "red", "warning": "orange", "success": "green"}.get(kind, "blue")


def _answer_dict(answer: CallbackAnswer) -> dict[str, Any]:
    return {
        "toast": answer.toast,
        "toast_kind": answer.toast_kind,
        "card": answer.card.model_dump(mode="json")
        if answer.card and not isinstance(answer, _PrivateAnswer)
        else None,
    }


def _answer_from_dict(data: dict[str, Any]) -> CallbackAnswer:
    card = Card.model_validate(data["card"]) if data.get("card") else None
    return CallbackAnswer(toast=data.get("toast"), toast_kind=data.get("toast_kind", "info"), card=card)
