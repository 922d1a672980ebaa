"""The goal-tree cards (issue 17 item 3): ``/okr`` (one person's goals), ``/okr tree`` (the tree under the
company's or a department's objectives, with its picture) and one objective's subtree (``OkrTree``).

Progress is a text bar (``▓▓▓▓▓▓░░░░ 60%``), which every platform shows the same, followed by the track in
colour words (🟢 on track, 🟠 at risk, 🔴 off track): progress against the share of the cycle that has
passed. The header takes the colour of the whole (green, orange, red).

Buttons: WeCom cards hold six, so an objective carries its full row (comment, challenge, its tree) only when
every objective's row fits; otherwise each objective gets one button to its own card (``OkrTree``), which
carries the full row. The handler checks who may see and act on every click.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_common import clip
from cards.goal_actions import GoalAdjustOpen, KeyResultUpdate, OkrTree
from cards.goal_comments import goal_buttons
from cards.kr_values import KrFacts, KrReading, number_text, percent, state_text, target_text
from cards.model import Actions, Button, Card, Colour, Element, Header, Image, Markdown, Note

MAX_BUTTONS = 6
"""The most any platform shows on one card (WeCom's template cards)."""
BAR_CELLS = 10
TRACK_COLOUR: dict[str, Colour] = {"on_track": "green", "at_risk": "orange", "off_track": "red"}


def bar(progress: float) -> str:
    """``▓▓▓▓▓▓░░░░ 60%``: a progress bar in text, the same on every platform."""
    p = percent(progress)
    filled = round(p / 100 * BAR_CELLS)
    return "▓" * filled + "░" * (BAR_CELLS - filled) + f" {p}%"


def track_text(t: Translator, track: str) -> str:
    return t(f"okr.track.{track}")


def colour_of(track: str | None) -> Colour:
    return TRACK_COLOUR.get(track or "", "blue")


# ------------------------------------------------------------------ one person's goals
@dataclass(frozen=True)
class KrLine:
    facts: KrFacts
    reading: KrReading


@dataclass(frozen=True)
class ObjectiveView:
    goal_id: int
    title: str
    level: str
    weight: int
    progress: float
    """Rolled up: its own key results and the goals aligned to it."""
    own: float
    track: str
    krs: tuple[KrLine, ...] = ()
    parent: str | None = None
    """ "研发部目标 1（王经理）"; None: not aligned."""
    aligned: int = 0
    """Goals aligned below it, directly or further down."""
    comments: int = 0


@dataclass(frozen=True)
class PersonGoalsView:
    cycle_code: str
    person_name: str
    own: bool
    """The viewer is the person."""
    expected: float
    objectives: tuple[ObjectiveView, ...]
    overall: float | None = None
    overall_track: str | None = None
    hidden: int = 0
    """Goals of the person the viewer may not see (only their company/department objectives are shown)."""
    hidden_reason: str = ""
    adjust_cycle_id: int | None = None
    """Set while the viewer may propose an adjustment of their own goals: the card offers the button."""


def kr_text(t: Translator, kr: KrLine) -> str:
    """ "NPS：36 / 40 分（50%）", "上线计费系统：未完成 · 截止 2026-12-15（0%）"."""
    if kr.facts.kind == "number":
        now = number_text(kr.reading.value)
        text = t("okr.kr_number", now=now, target=target_text(kr.facts))
    else:
        due = target_text(kr.facts)
        text = state_text(t, kr.facts, kr.reading) + (t("okr.kr_due", date=due) if due else "")
    return t("okr.kr_line", title=clip(kr.facts.title, 80), text=text, percent=percent(kr.reading.progress))


def objective_text(t: Translator, o: ObjectiveView, n: int | None = None) -> str:
    """An objective with its progress, key results and where it aligns; ``n`` numbers it ("O2")."""
    head = "okr.objective_head" if n is not None else "okr.objective_head_plain"
    lines = [t(head, n=n, title=clip(o.title, 120), weight=o.weight)]
    lines.append(t("okr.progress_line", bar=bar(o.progress), track=track_text(t, o.track)))
    if o.aligned:
        if o.krs:
            lines.append(t("okr.blend_line", own=percent(o.own), n=o.aligned))
        else:
            lines.append(t("okr.children_only", n=o.aligned))
    lines += [kr_text(t, kr) for kr in o.krs[:5]]
    if o.parent:
        lines.append(t("okr.aligned_to", parent=clip(o.parent, 120)))
    elif o.level == "person":
        lines.append(t("okr.unaligned"))
    if o.comments:
        lines.append(t("okr.comments", n=o.comments))
    return clip("\n".join(lines), 2000)


def objective_buttons(t: Translator, o: ObjectiveView, *, own: bool) -> list[Button]:
    """Comment, challenge (not on one's own goal) and the objective's tree."""
    return [
        *goal_buttons(t, o.goal_id, challenge=not own),
        Button(label=t("okr.tree_button"), value=pack(OkrTree(goal_id=o.goal_id))),
    ]


def person_goals_card(t: Translator, view: PersonGoalsView) -> Card:
    title = (
        t("okr.mine_title", code=view.cycle_code)
        if view.own
        else t("okr.theirs_title", name=view.person_name, code=view.cycle_code)
    )
    subtitle = t("okr.subtitle", expected=percent(view.expected))
    if view.overall is not None:
        subtitle += t("okr.subtitle_overall", overall=percent(view.overall))
    elements: list[Element] = []
    rows = [objective_buttons(t, o, own=view.own) for o in view.objectives]
    adjust = 1 if view.adjust_cycle_id is not None else 0
    full_rows = sum(len(r) for r in rows) + adjust <= MAX_BUTTONS
    for n, (o, row) in enumerate(zip(view.objectives, rows, strict=True), start=1):
        elements.append(Markdown(text=objective_text(t, o, n)))
        if full_rows:
            elements.append(Actions(buttons=row))
        else:
            elements.append(
                Actions(
                    buttons=[
                        Button(
                            label=clip(t("okr.open_button", n=n), 20), value=pack(OkrTree(goal_id=o.goal_id))
                        )
                    ]
                )
            )
    if view.adjust_cycle_id is not None and len(view.objectives) < MAX_BUTTONS:
        button = Button(
            label=t("goal_adjust.open_button"), value=pack(GoalAdjustOpen(cycle_id=view.adjust_cycle_id))
        )
        elements += [Note(text=t("goal_adjust.open_hint")), Actions(buttons=[button])]
    if view.hidden:
        hidden = t("okr.hidden", name=view.person_name, n=view.hidden, reason=view.hidden_reason)
        elements.append(Note(text=clip(hidden, 300)))
    if not view.objectives:
        elements.append(
            Markdown(text=t("okr.none_mine") if view.own else t("okr.none_theirs", name=view.person_name))
        )
    elements.append(Note(text=t("okr.footer")))
    return Card(
        header=Header(
            title=clip(title, 60), subtitle=clip(subtitle, 120), colour=colour_of(view.overall_track)
        ),
        elements=elements[:30],
        summary=clip(title, 100),
    )


# ------------------------------------------------------------------ the tree
@dataclass(frozen=True)
class TreeNodeView:
    goal_id: int
    depth: int
    title: str
    owner: str
    level: str
    progress: float
    track: str
    below: int = 0
    """Goals aligned below it, directly or further down."""
    coverage: tuple[int, int] | None = None
    """(participants owning a goal below it, participants in scope): shown to leaders only."""


@dataclass(frozen=True)
class FoldedView:
    """Aligned goals not listed one by one under the row above it (deeper levels, or beyond the first few)."""

    depth: int
    goals: int
    people: int


@dataclass(frozen=True)
class TreeView:
    title: str
    cycle_code: str
    expected: float
    roots: tuple[TreeNodeView, ...]
    rows: tuple[TreeNodeView | FoldedView, ...] = ()
    media_id: str | None = None
    focus: ObjectiveView | None = None
    """The drilled-into objective (``OkrTree``), with its key results and where it aligns."""
    focus_own: bool = False
    focus_records: bool = False
    """The viewer may record the values of the drilled-into objective's key results (its owner or their
    manager): each key result gets an "update" button."""
    parent_goal_id: int | None = None
    drill: tuple[TreeNodeView, ...] = field(default_factory=tuple)
    """Children worth drilling into (they have aligned goals of their own), for buttons."""


def coverage_text(t: Translator, coverage: tuple[int, int]) -> str:
    covered, total = coverage
    share = round(100 * covered / total) if total else 0
    return t("okr.coverage", share=share, covered=covered, total=total)


def node_detail(t: Translator, node: TreeNodeView, *, owner: bool = True) -> str:
    parts = [node.owner] if owner else []
    if node.below:
        parts.append(t("okr.below", n=f"{node.below:,}"))
    if node.coverage is not None:
        parts.append(coverage_text(t, node.coverage))
    return " · ".join(parts)


def folded_text(t: Translator, row: FoldedView) -> str:
    return t("okr.folded", goals=f"{row.goals:,}", people=f"{row.people:,}")


def _node_line(t: Translator, node: TreeNodeView) -> str:
    indent = "　" * node.depth + ("└ " if node.depth else "")
    return t(
        "okr.tree_line",
        indent=indent,
        title=clip(node.title, 60),
        percent=percent(node.progress),
        track=track_text(t, node.track),
        detail=node_detail(t, node),
    )


def tree_card(t: Translator, view: TreeView) -> Card:
    worst = _worst([r.track for r in view.roots])
    elements: list[Element] = []
    if view.media_id:
        elements.append(Image(media_id=view.media_id, alt=clip(t("okr.image_alt", title=view.title), 100)))
    buttons: list[Button] = []
    if view.focus is not None:
        elements.append(Markdown(text=objective_text(t, view.focus)))
        buttons += objective_buttons(t, view.focus, own=view.focus_own)[:-1]
        if view.parent_goal_id is not None:
            buttons.append(Button(label=t("okr.up_button"), value=pack(OkrTree(goal_id=view.parent_goal_id))))
        if view.focus_records:
            buttons += [
                Button(
                    label=clip(t("okr.update_button", kr=kr.facts.title), 20),
                    value=pack(KeyResultUpdate(key_result_id=kr.facts.id)),
                )
                for kr in view.focus.krs
            ]
    blocks: list[list[str]] = []
    for row in view.rows:
        if isinstance(row, FoldedView):
            if not blocks:
                blocks.append([])
            blocks[-1].append("　" * row.depth + "└ " + folded_text(t, row))
        elif row.depth == 0 and view.focus is None:
            head = [
                t("okr.root_head", title=clip(row.title, 120), owner=clip(row.owner, 40)),
                t("okr.progress_line", bar=bar(row.progress), track=track_text(t, row.track)),
            ]
            detail = node_detail(t, row, owner=False)
            blocks.append([*head, detail] if detail else head)
        else:
            if not blocks:
                blocks.append([])
            blocks[-1].append(_node_line(t, row))
    for block in blocks:
        if block:
            elements.append(Markdown(text=clip("\n".join(block), 2000)))
    if view.focus is not None and not view.rows:
        elements.append(Note(text=t("okr.nothing_below")))
    for node in view.drill:
        if len(buttons) >= MAX_BUTTONS:
            break
        buttons.append(
            Button(
                label=clip(t("okr.drill_button", title=node.title), 20),
                value=pack(OkrTree(goal_id=node.goal_id)),
            )
        )
    if buttons:
        elements.append(Actions(buttons=buttons[:MAX_BUTTONS]))
    elements.append(Note(text=t("okr.tree_footer")))
    title = t("okr.tree_title", title=clip(view.title, 40), code=view.cycle_code)
    return Card(
        header=Header(
            title=clip(title, 60),
            subtitle=clip(t("okr.subtitle", expected=percent(view.expected)), 120),
            colour=colour_of(view.focus.track if view.focus is not None else worst),
        ),
        elements=elements[:30],
        summary=clip(title, 100),
    )


def _worst(tracks: Sequence[str]) -> str | None:
    for track in ("off_track", "at_risk", "on_track"):
        if track in tracks:
            return track
    return None
