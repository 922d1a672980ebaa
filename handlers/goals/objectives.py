"""Company and department objectives (issue 17 item 2): the top of the goal tree, set for the running cycle.

``/objective`` (``/设定目标``) opens the form: ``/objective company`` for HR admins and leaders,
``/objective department [部门名]`` for a department's head (their own department) or an HR admin (any
department, named). Without a word it opens what the person may set: the company's for HR and leaders, else
the department they head. Each objective has key results, one per line, read by the same parser and guarded
by the same rules as a person's goals (``kr_box``). A department objective aligns to one of the company's
objectives; while the company has any, it must.

Submitting again for the same level (and department) replaces its objectives: one whose text is unchanged
keeps its row (and what is aligned to it) with the new key results; one left out is removed, unless goals
are already aligned to it: then it is kept as it is, and the card says so (the people aligned to it would
otherwise lose their parent without being asked). Company and department objectives share the level's
weight equally (they are rolled up as equals). Permission (``people.may_set_objectives``) is checked on the
command and again on submit: a refused click changes nothing and says who may do it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.context import Context, Refused, Reply
from bot.core.forms import FormData, form_of
from bot.core.forms import text as _text
from bot.core.people import is_hr_admin, may_set_objectives
from bot.core.router import Router
from bot.core.status import CycleStatus, GoalLevel
from bot.core.vague import must_bounce_any
from cards.catalogue import Translator
from cards.flow_common import clip, done_by
from cards.goal_actions import ObjectiveSubmit
from cards.goals import NO_PARENT
from cards.model import Card, Form
from cards.objectives import (
    MAX_OBJECTIVES,
    ObjectiveRow,
    ObjectiveView,
    objectives_form_card,
    objectives_saved_card,
)
from handlers.goals import alignment
from handlers.goals.kr_box import draft_of, read_box, row_lines, vague_kr
from handlers.goals.kr_parse import ParsedKr, split_lines
from handlers.goals.recompute import settle_saved
from storage.models import Cycle, Department, Goal
from storage.queries import cycles as cq
from storage.queries import goals as gq
from storage.queries.people import departments_by_names

router = Router()

COMPANY_WORDS = frozenset({"company", "公司"})
DEPARTMENT_WORDS = frozenset({"department", "dept", "部门"})


class ObjectivesInvalid(ValueError):
    """An objectives form that cannot be saved; the message lists every problem."""


@dataclass(frozen=True)
class Scope:
    """Which objectives a form sets: the company's (``department`` None) or one department's."""

    cycle: Cycle
    department: Department | None

    @property
    def level(self) -> GoalLevel:
        return GoalLevel.COMPANY if self.department is None else GoalLevel.DEPARTMENT

    @property
    def department_id(self) -> int | None:
        return self.department.id if self.department is not None else None

    @property
    def guard_entity(self) -> tuple[str, int]:
        """The vague guard asks once per cycle and department (one audit key per form)."""
        if self.department is None:
            return "company_objectives", self.cycle.id
        return f"dept_objectives_{self.cycle.id}"[:32], self.department.id


@dataclass(frozen=True)
class ParsedObjective:
    n: int
    objective: str
    krs: list[ParsedKr]
    lines: str
    parent: str


def _refuse_level(ctx: Context, level: GoalLevel, department: Department | None) -> Refused:
    if level == GoalLevel.COMPANY:
        return ctx.refuse("objectives.only_company")
    return ctx.refuse("objectives.only_department", department=department.name if department else "—")


def _check(ctx: Context, scope: Scope) -> None:
    if not may_set_objectives(ctx.person, scope.level, scope.department):
        raise _refuse_level(ctx, scope.level, scope.department)


async def _department(ctx: Context, name: str) -> Department:
    """The department a ``/objective department`` means: the one named, else the one the person heads."""
    if name:
        found, _ = await departments_by_names(ctx.session, ctx.workspace.id, [name])
        if not found:
            raise ctx.refuse("objectives.no_department", name=clip(name, 40))
        if len(found) > 1:
            raise ctx.refuse("objectives.two_departments", name=clip(name, 40))
        return found[0]
    headed = await gq.departments_headed_by(ctx.session, ctx.person.id)
    mine = [d for d in headed if d.workspace_id == ctx.workspace.id]
    if len(mine) == 1:
        return mine[0]
    if mine:
        raise ctx.refuse("objectives.name_department", names="、".join(d.name for d in mine[:6]))
    if is_hr_admin(ctx.person):
        raise ctx.refuse("objectives.name_department_hr")
    raise ctx.refuse("objectives.only_department", department="—")


async def _active_cycle(ctx: Context) -> Cycle:
    cycle = await cq.latest_active_cycle(ctx.session, ctx.workspace.id)
    if cycle is None:
        raise ctx.refuse("objectives.no_cycle")
    return cycle


@router.command("objective", "objectives", "设定目标")
async def objective_command(ctx: Context, args: str) -> Reply:
    """``/objective [company | department [部门名]]``: the objectives form of the running cycle."""
    first, _, rest = args.strip().partition(" ")
    word = first.lower()
    if word in COMPANY_WORDS:
        department: Department | None = None
    elif word in DEPARTMENT_WORDS:
        department = await _department(ctx, rest.strip())
    elif word:
        department = await _department(ctx, args.strip())
    elif may_set_objectives(ctx.person, GoalLevel.COMPANY):
        department = None
    elif await gq.departments_headed_by(ctx.session, ctx.person.id):
        department = await _department(ctx, "")
    else:
        raise ctx.refuse("objectives.nothing_allowed")
    scope = Scope(await _active_cycle(ctx), department)
    _check(ctx, scope)
    return Reply(card=await _form_card(ctx, scope))


async def _scope(ctx: Context, payload: ObjectiveSubmit) -> Scope:
    cycle = await ctx.session.get(Cycle, payload.cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    if cycle.status != CycleStatus.ACTIVE:
        raise ctx.refuse("kickoff.not_active", code=cycle.code)
    department = None
    if payload.department_id is not None:
        department = await ctx.session.get(Department, payload.department_id)
        if department is None or department.workspace_id != ctx.workspace.id:
            raise ctx.refuse("common.invalid_action")
    scope = Scope(cycle, department)
    _check(ctx, scope)
    return scope


async def _existing(ctx: Context, scope: Scope) -> list[Goal]:
    return await gq.goals_at(
        ctx.session, scope.cycle.id, level=scope.level, department_id=scope.department_id
    )


async def _candidates(ctx: Context, scope: Scope) -> list[alignment.Candidate]:
    if scope.department is None:
        return []
    return await alignment.for_department(ctx.session, ctx.t, scope.cycle.id)


async def _form_card(
    ctx: Context,
    scope: Scope,
    *,
    rows: Sequence[ObjectiveRow] | None = None,
    error: str | None = None,
    warning: str | None = None,
) -> Card:
    existing = await _existing(ctx, scope)
    if rows is None:
        krs = await gq.key_results_of(ctx.session, [g.id for g in existing])
        rows = [
            ObjectiveRow(
                g.objective,
                row_lines(krs[g.id]) if krs[g.id] else g.key_result,
                str(g.parent_id) if g.parent_id is not None else "",
            )
            for g in existing
        ]
    candidates = await _candidates(ctx, scope)
    shown = [
        ObjectiveRow(
            r.objective,
            r.key_results,
            r.parent,
            str(alignment.suggestion(f"{r.objective}；{r.key_results}", candidates) or ""),
        )
        for r in rows
    ]
    children = await gq.child_counts(ctx.session, [g.id for g in existing])
    return objectives_form_card(
        ctx.t,
        cycle_id=scope.cycle.id,
        code=scope.cycle.code,
        department_id=scope.department_id,
        department=scope.department.name if scope.department else None,
        max_key_results=ctx.settings.goals.max_key_results,
        choices=alignment.choices(candidates),
        parent_required=bool(candidates),
        defaults=shown,
        kept=[g.objective for g in existing if children.get(g.id)],
        error=error,
        warning=warning,
    )


async def build_objective_form(ctx: Context, payload: ObjectiveSubmit) -> Form:
    return (await _form_card(ctx, await _scope(ctx, payload))).forms()[0]


def typed_rows(form: FormData) -> list[ObjectiveRow]:
    return [
        ObjectiveRow(
            _text(form, f"objective_{i}", 300),
            _text(form, f"key_results_{i}"),
            _text(form, f"parent_{i}", 40),
        )
        for i in range(1, MAX_OBJECTIVES + 1)
    ]


def _parse(ctx: Context, scope: Scope, rows: Sequence[ObjectiveRow]) -> list[ParsedObjective]:
    ref = scope.cycle.starts_on or ctx.today()
    out: list[ParsedObjective] = []
    errors: list[str] = []
    for i, row in enumerate(rows, start=1):
        if row.empty:
            continue
        if not row.objective:
            errors.append(ctx.t("goals.err_objective", n=i))
        box = read_box(ctx.t, row.key_results, n=i, ref=ref, max_krs=ctx.settings.goals.max_key_results)
        errors += box.errors
        if row.objective and not box.errors:
            lines = "\n".join(split_lines(row.key_results))
            out.append(ParsedObjective(i, row.objective[:300], box.krs, lines, row.parent))
    if not errors and not out:
        errors.append(ctx.t("goals.err_empty"))
    if errors:
        raise ObjectivesInvalid("\n".join(errors))
    return out


async def _parents(
    ctx: Context, scope: Scope, objectives: Sequence[ParsedObjective], existing: Sequence[Goal]
) -> list[int | None]:
    """A department objective's company objective: one on the list; required while the company has any."""
    candidates = await _candidates(ctx, scope)
    if scope.department is None:
        return [None] * len(objectives)
    index = gq.match([g.objective for g in existing], [o.objective for o in objectives], by_position=False)
    out: list[int | None] = []
    errors: list[str] = []
    for objective, i in zip(objectives, index, strict=True):
        keep = existing[i].parent_id if i is not None else None
        value = objective.parent
        if candidates and value == NO_PARENT:
            value = ""
        try:
            parent, _ = await alignment.resolve(
                ctx.session,
                value,
                candidates=candidates,
                text=f"{objective.objective}；{objective.lines}",
                keep=keep,
                own_ids=[g.id for g in existing],
            )
        except alignment.ParentInvalid as bad:
            errors.append(ctx.t(bad.key, n=objective.n, parent=clip(bad.parent, 60)))
            continue
        if parent is None and candidates:
            errors.append(ctx.t("objectives.parent_required", n=objective.n))
        out.append(parent)
    if errors:
        raise ObjectivesInvalid("\n".join(errors))
    return out


def shares(n: int) -> list[int]:
    """``n`` equal whole-number weights adding up to 100 (the first ones take the remainder)."""
    if n <= 0:
        return []
    base, extra = divmod(100, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


@router.action(ObjectiveSubmit, form=build_objective_form)
async def submit_objectives(ctx: Context, payload: ObjectiveSubmit) -> Reply:
    scope = await _scope(ctx, payload)
    rows = typed_rows(form_of(ctx))
    existing = await _existing(ctx, scope)
    try:
        objectives = _parse(ctx, scope, rows)
        parents = await _parents(ctx, scope, objectives, existing)
    except ObjectivesInvalid as exc:
        return Reply(
            toast=str(exc).splitlines()[0][:200],
            toast_kind="error",
            card=await _form_card(ctx, scope, rows=rows, error=str(exc)),
        )
    texts = [vague_kr(o.krs) for o in objectives]
    entity, entity_id = scope.guard_entity
    vague = await must_bounce_any(ctx, texts, entity=entity, entity_id=entity_id)
    if vague:
        lines = [ctx.t("goals.vague_kr", n=objectives[i].n, text=clip(texts[i], 80)) for i in vague]
        warning = "\n".join([*lines, ctx.t("goals.vague_footer")])
        return Reply(
            toast=lines[0][:200],
            toast_kind="warning",
            card=await _form_card(ctx, scope, rows=rows, warning=warning),
        )
    return await _save(ctx, scope, objectives, parents, existing)


async def _save(
    ctx: Context,
    scope: Scope,
    objectives: Sequence[ParsedObjective],
    parents: Sequence[int | None],
    existing: Sequence[Goal],
) -> Reply:
    children = await gq.child_counts(ctx.session, [g.id for g in existing])
    index = gq.match([g.objective for g in existing], [o.objective for o in objectives], by_position=False)
    used = {i for i in index if i is not None}
    staying = [g for i, g in enumerate(existing) if i not in used and children.get(g.id)]
    weights = shares(len(objectives) + len(staying))
    drafts = [
        gq.GoalDraft(
            objective=o.objective,
            key_result=o.lines,
            weight=w,
            parent_id=p,
            krs=[draft_of(kr) for kr in o.krs],
        )
        for o, p, w in zip(objectives, parents, weights, strict=False)
    ]
    saved = await gq.save_goals(
        ctx.session,
        existing=existing,
        drafts=drafts,
        cycle_id=scope.cycle.id,
        owner_id=ctx.person.id,
        level=scope.level,
        department_id=scope.department_id,
        by_position=False,
        keep_with_children=True,
        now=ctx.now,
    )
    for goal, weight in zip(saved.kept, weights[len(drafts) :], strict=True):
        goal.weight = weight
    await settle_saved(ctx.session, saved, by_person_id=ctx.person.id, at=ctx.now)
    ctx.audit(
        "objectives.set",
        "cycle",
        scope.cycle.id,
        level=scope.level.value,
        department_id=scope.department_id,
        objectives=[g.id for g in saved.goals],
        kept=[g.id for g in saved.kept],
    )
    everything = [*saved.goals, *saved.kept]
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("objectives.did_save"), at=ctx.now, tz=ctx.zone())
    return Reply(
        toast=ctx.t("objectives.saved", count=len(saved.goals)),
        card=objectives_saved_card(
            ctx.t,
            code=scope.cycle.code,
            department=scope.department.name if scope.department else None,
            views=await views_of(ctx, ctx.t, everything),
            kept=[g.objective for g in saved.kept],
            note=note,
        ),
    )


async def views_of(ctx: Context, t: Translator, goals: Sequence[Goal]) -> list[ObjectiveView]:
    krs = await gq.key_results_of(ctx.session, [g.id for g in goals])
    names = await alignment.labels(ctx.session, t, [g.parent_id for g in goals])
    children = await gq.child_counts(ctx.session, [g.id for g in goals])
    return [
        ObjectiveView(
            objective=g.objective,
            key_results=[kr.title for kr in krs[g.id]],
            aligned_to=names.get(g.parent_id) if g.parent_id is not None else None,
            children=children.get(g.id, 0),
        )
        for g in goals
    ]
