"""Configuration: one pydantic-settings model from a TOML file plus ``PERFLOOP_*`` environment overrides.

Secrets are expected to come from the environment (``PERFLOOP_WECOM__SECRET=…``) so the TOML file can be
committed to an ops repository without them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = Path("perfloop.toml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    admin_port: int = Field(0, ge=0, le=65535)
    """A second listener for ``/metrics`` and ``/healthz`` (issue 16 #14); 0 = none, and both stay on
    ``port``. When set, ``/metrics`` is served only there; ``/healthz`` is on both, for load balancers."""
    admin_host: str = "127.0.0.1"
    """Address of the admin listener: loopback or the cluster's private network, never the public one."""
    metrics_token: str = ""
    """When set, ``/metrics`` needs ``Authorization: Bearer <token>`` on whichever listener serves it
    (Prometheus: ``authorization: {credentials: …}``). Set it from the environment."""

    @model_validator(mode="after")
    def _check_admin(self) -> ServerConfig:
        if self.admin_port and self.admin_port == self.port and self.admin_host == self.host:
            raise ValueError("admin_port must differ from port (0 turns the admin listener off)")
        return self


class DatabaseConfig(Section):
    url: str = "sqlite+aiosqlite:///perfloop.db"
    echo: bool = False
    pool_size: int = Field(10, ge=1)


class MediaConfig(Section):
    dir: Path = Path("media")
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)


class RateLimit(Section):
    """One app's call budget on a platform (``adapters/ratelimit.py``): paced at ``per_second``, never more
    than that many calls in any second, nor ``per_minute`` (when set) in any minute."""

    per_second: float = Field(20.0, gt=0)
    burst: int = Field(20, ge=1)
    per_minute: int | None = Field(None, ge=1)
    margin_seconds: float = Field(0.0, ge=0, le=1)
    """Added to each window. A call already counts from its answer, the latest moment the platform can
    have seen it; raise this only for a platform that still answers "rate limited" at the configured rate."""


class PlatformSection(Section):
    enabled: bool = False
    api_base: str = ""
    rate_limit: RateLimit = RateLimit()

    def _require(self, *keys: str) -> None:
        if not self.enabled:
            return
        for key in keys:
            if not getattr(self, key):
                raise ValueError(f"{key}: required when enabled = true")


class WeComConfig(PlatformSection):
    api_base: str = "https://qyapi.weixin.qq.com"
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    replay_window_seconds: int = Field(300, ge=30, le=7 * 24 * 3600)
    """How old a callback's signed ``timestamp`` may be (issue 16 #7). WeCom documents no window; it retries
    within seconds, so 300 s is ample."""
    clock_tolerance_seconds: int = Field(300, ge=0, le=24 * 3600)
    """How far in the future a signed ``timestamp`` may be (the two clocks disagreeing)."""

    @model_validator(mode="after")
    def _check(self) -> WeComConfig:
        self._require("corp_id", "agent_id", "secret", "token", "encoding_aes_key")
        return self


class DingTalkConfig(PlatformSection):
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    app_key: str = ""
    app_secret: str = ""
    robot_code: str = ""
    token: str = ""
    aes_key: str = ""
    corp_id: str = ""
    mode: Literal["stream", "http"] = "stream"
    card_template_id: str = ""
    agent_id: int = 0
    """Needed only for the work-notification fallback (``asyncsend_v2``)."""
    work_notice_fallback: bool = False
    """Send a work notification to people the robot cannot reach (not in its visible range, etc.)."""
    download_hosts: list[str] = []
    """Extra host suffixes robot-file download URLs may point at, besides ``.dingtalk.com``."""
    replay_window_seconds: int = Field(3600, ge=30, le=7 * 24 * 3600)
    """HTTP mode: how old a robot message's or event's signed ``timestamp`` may be (issue 16 #7). DingTalk
    documents one hour; a robot signature seen once is refused with another message for as long (#5)."""
    clock_tolerance_seconds: int = Field(3600, ge=0, le=24 * 3600)
    """How far in the future a signed ``timestamp`` may be (DingTalk: one hour either way)."""
    card_click_ttl_days: int = Field(30, ge=1, le=365)
    """HTTP mode: a card's buttons stop working this many days after it was sent or last updated (issue 16
    #6: each button carries a signed, expiring click token instead of trusting only the static URL token)."""

    @model_validator(mode="after")
    def _check(self) -> DingTalkConfig:
        self._require("app_key", "app_secret", "robot_code")
        if self.enabled and self.mode == "http":
            self._require("token", "aes_key", "corp_id")
        if self.enabled and self.work_notice_fallback:
            self._require("agent_id")
        return self


class FeishuConfig(PlatformSection):
    api_base: str = "https://open.feishu.cn"
    rate_limit: RateLimit = RateLimit(per_second=50.0, burst=10, per_minute=1000)
    """Feishu's message APIs allow 50 calls/s and 1,000/min per app; the limiter keeps both."""
    app_id: str = ""
    app_secret: str = ""
    verification_token: str = ""
    encrypt_key: str = ""
    mode: Literal["webhook", "websocket"] = "webhook"
    replay_window_seconds: int = Field(8 * 3600, ge=30, le=7 * 24 * 3600)
    """Webhook mode: how old an event may be, by its signed ``X-Lark-Request-Timestamp`` and its
    ``header.create_time`` (issue 16 #7). Feishu retries a failed push after 15 s, 5 min, 1 h and 6 h
    (about 7.1 h in all), so keep this above 7.5 h or its last retry is refused."""
    clock_tolerance_seconds: int = Field(300, ge=0, le=24 * 3600)
    """How far in the future an event's timestamps may be (the two clocks disagreeing)."""

    @model_validator(mode="after")
    def _check(self) -> FeishuConfig:
        self._require("app_id", "app_secret")
        if self.enabled and self.mode == "webhook":
            self._require("verification_token")
        return self


class SimConfig(Section):
    enabled: bool | None = None
    """None = on exactly when no real platform is enabled."""
    allow_with_platforms: bool = False
    allow_remote: bool = False
    """The simulator lets anyone act as anyone: by default it refuses to run on a non-loopback address."""


class ScheduleConfig(Section):
    default_timezone: str = "Asia/Shanghai"
    tick_seconds: int = Field(120, ge=5)
    checkin_every_weeks: int = Field(2, ge=1, le=8)
    checkin_weekday: int = Field(4, ge=0, le=6)
    checkin_time: dt.time = dt.time(16, 0)
    checkin_reminder_hours: int = Field(24, ge=1)
    checkin_answer_window_hours: int = Field(72, ge=1)
    review_day: Literal["last_workday", "first_workday"] | int = "last_workday"
    review_time: dt.time = dt.time(10, 0)
    catchup_horizon_hours: int = Field(48, ge=1)
    reminder_time: dt.time = dt.time(9, 30)
    """Local time of action-item reminders/escalations and of the weekly evidence rules."""
    extra_holidays: list[dt.date] = []
    extra_workdays: list[dt.date] = []

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        """The fallback for every person whose own zone is unknown (``bot/core/localtime.py``) must itself be
        a zone, or the fallback would crash where it should rescue."""
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None
        return name


class EscalationConfig(Section):
    remind_days_before: int = Field(3, ge=0)
    manager_grace_days: int = Field(1, ge=0)
    hrbp_grace_days: int = Field(3, ge=0)
    progress_gap_percent: int = Field(20, ge=1, le=100)


class DigestConfig(Section):
    enabled: bool = True
    time: dt.time = dt.time(9, 0)
    managers_too: bool = False
    trend_days: int = Field(30, ge=7, le=365)


class EvidenceConfig(Section):
    attach_window_minutes: int | None = Field(None, ge=1)
    """How long a photo request stays open. Unset (the default): until the end of the person's next workday
    in their zone (the scheduler's workday calendar), since people answer from their phone hours later; a
    number: that many minutes after the request. An unanswered request then expires."""
    missing_weeks_to_director: int = Field(2, ge=1)
    needs_improvement_streak: int = Field(3, ge=2)


class CyclesConfig(Section):
    max_goals: int = Field(5, ge=1, le=20)
    late_submissions: Literal["refuse", "accept"] = "refuse"
    """What happens to an answer for a cycle that is already closed (issue 20 #1): ``refuse`` says so,
    naming the cycle and what to do; ``accept`` records it and marks it late in the audit. While a cycle
    is *closing*, what was already started is accepted either way."""
    kickoff_chunk: int = Field(1000, ge=10, le=20_000)
    """People written per transaction when a cycle starts (issue 22 #3): a first chunk (at most 200 people)
    commits with the confirmation and its cards leave at once; the rest follow a chunk at a time, each sent
    as it commits."""


class DedupeWindows(Section):
    """Seconds each platform recognises a resend by its idempotency data (PLATFORMS.md): Feishu's message
    ``uuid`` one hour; WeCom's ``duplicate_check_interval`` (we ask this value, WeCom allows up to 4 h);
    DingTalk 0 because its robot text messages carry no idempotency data (cards do, by ``outTrackId``, but
    the outbox cannot tell the two apart before rendering). Outside the window a send in doubt is not
    repeated (bot/app/outbox.py)."""

    feishu: int = Field(3600, ge=0, le=3600)
    wecom: int = Field(1800, ge=0, le=4 * 3600)
    dingtalk: int = Field(0, ge=0, le=7 * 24 * 3600)
    sim: int = Field(3600, ge=0, le=7 * 24 * 3600)


class ClicksConfig(Section):
    """Group commit of card clicks (``bot/app/group_commit.py``): clicks that arrive while the database is
    busy share one transaction, each still answered on its own."""

    group_commit: bool = True
    max_group: int = Field(32, ge=1, le=1000)
    """Clicks in one transaction at most."""
    lanes: int = Field(0, ge=0, le=32)
    """Groups in flight at once at most; 0: 1 on SQLite (one writer anyway), 4 on PostgreSQL."""
    lane_stall_ms: float = Field(100.0, gt=0)
    """A further lane opens only when every group in flight has been running this long: groups stay large
    (cheap) while the database keeps up, and one slow handler does not hold up every click behind it."""
    group_budget_ms: float = Field(200.0, gt=0)
    """A group still running after this long commits what it has done and hands the rest back to the queue."""


class OutboxConfig(Section):
    workers: int = Field(4, ge=1, le=64)
    batch_size: int = Field(50, ge=1, le=1000)
    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(600.0, gt=0)
    lease_seconds: int = Field(120, ge=5)
    poll_seconds: float = Field(0.5, gt=0)
    per_person_per_minute: int = Field(20, ge=0, le=1000)
    """At most this many messages to one person a minute (0 = no cap); more wait, none are dropped."""
    per_person_per_hour: int = Field(600, ge=0, le=100_000)
    """At most this many messages to one person an hour (0 = no cap). WeCom's own per-member limits
    (30/min, 1,000/h, excess silently dropped) are enforced below these whatever is set (issue 16 #17)."""
    dedupe_window_seconds: DedupeWindows = DedupeWindows()
    dedupe_margin_seconds: int = Field(300, ge=0, le=3600)
    """Subtracted from every window: request time in flight plus clock difference between replicas."""


class RetentionConfig(Section):
    """How long the growing tables keep rows (issue 16 #12) and when leavers are erased (#13). The daily
    retention sweep (``bot/app/retention.py``) applies it on the scheduler's leader, in small batches."""

    enabled: bool = True
    every_hours: int = Field(24, ge=1, le=24 * 7)
    """How often the sweep runs; a run that hit its budget goes on at the next scheduler tick."""
    batch_size: int = Field(2000, ge=10, le=50_000)
    """Rows per short transaction: no statement holds a lock for longer than one batch."""
    max_seconds: float = Field(30.0, gt=0, le=3600)
    """Time budget of one run, so a first run over years of history never holds up the scheduler's tick."""
    inbound_events_days: int = Field(7, ge=2, le=3650)
    """Events older than this are forgotten. Must outlast every platform's retry schedule and replay window
    (Feishu retries for hours; WeCom and DingTalk within minutes), or a late retry would run twice."""
    outbox_card_days: int = Field(7, ge=1, le=3650)
    """Sent outbox rows older than this lose their card JSON (id, status, recipients, refs stay)."""
    outbox_sent_days: int = Field(90, ge=7, le=3650)
    """Sent outbox rows older than this are deleted (dead and unsent rows are never deleted)."""
    card_messages_days: int = Field(400, ge=30, le=3650)
    """Where a card landed, kept this long after its last send so it can still be updated in place."""
    scheduled_sends_days: int = Field(400, ge=150, le=3650)
    """Scheduler ledger keys older than this are pruned; never fewer days than the scheduler could look
    back (longest series lookback plus the catch-up horizon), and never a key of a record still open."""
    audit_log_days: int = Field(400, ge=90, le=3650)
    """Audit rows older than this move to compressed JSONL files under ``archive_dir`` (never lost)."""
    archive_dir: Path = Path("archive")
    """Where archived audit rows are written (``audit_log/<first id>.jsonl.gz``)."""
    leavers_erase_days: int = Field(365, ge=0, le=3650)
    """Inactive people unchanged for this many days are erased (``perfloop person-erase``); 0 = never."""
    snapshot_image_months: int = Field(13, ge=0, le=120)
    """Growth-snapshot images of months older than this are deleted from the media store (the figures stay,
    and ``/snapshot`` draws an image again if asked); 13 keeps last year's same month. 0 = never."""


class ConversationConfig(Section):
    answer_timeout_minutes: int = Field(30, ge=1, le=24 * 60)
    """How long a form being answered in chat (WeCom, DingTalk) waits for the next reply."""


class FeedbackConfig(Section):
    """Self-assessment, peer feedback, deliverable ratings and grades (Flows III)."""

    anonymity_threshold: int = Field(3, ge=3, le=10)
    """Peer answers are shown, in aggregate only, once at least this many peers answered."""
    gap_points: float = Field(1.5, gt=0, le=4)
    """Self vs peers gap on one dimension that is flagged for coaching."""
    self_assessment_lead_days: int = Field(14, ge=0, le=90)
    """Days before a cycle's end that the self-assessment card goes out."""
    rating_window_hours: int = Field(48, ge=2, le=24 * 14)
    """Deliverable ratings close after this; the one reminder comes at half-time."""
    grade_scale: list[str] = ["A", "B", "C", "D"]
    calibration_sigma: float = Field(2.0, gt=0)
    """Alert when a grade's share deviates from the department's history by more than this many SDs."""
    calibration_min_history: int = Field(2, ge=2)
    """Past released cycles a department needs before the standard-deviation rule applies."""
    calibration_band: dict[str, tuple[float, float]] = {}
    """Optional fixed share bands per grade, e.g. ``A = [0.0, 0.3]``; outside the band alerts too."""

    @model_validator(mode="after")
    def _check(self) -> FeedbackConfig:
        scale = self.grade_scale
        if not 2 <= len(scale) <= 8 or len(set(scale)) != len(scale):
            raise ValueError("grade_scale: 2 to 8 distinct grades")
        if any(not g.strip() or len(g) > 8 for g in scale):
            raise ValueError("grade_scale: grades are 1 to 8 characters")
        for grade, (low, high) in self.calibration_band.items():
            if grade not in scale:
                raise ValueError(f"calibration_band: {grade} is not in grade_scale")
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(f"calibration_band: {grade} needs 0 <= low <= high <= 1")
        return self


class GradesConfig(Section):
    """What happens to a grade after release (issue 20): corrections and appeals."""

    appeal_window_days: int = Field(7, ge=1, le=90)
    """An employee may appeal a released (or corrected) grade until the end of this many days after it."""


class ThresholdsConfig(Section):
    """Where a department's health figure turns from fine to a concern (issue 20): the monthly brief draws
    these lines, the weekly threshold alerts fire on them. Kept in this one place so per-department values
    (templates) can take over later without touching the flows."""

    evidence_completeness: float = Field(0.85, ge=0, le=1)
    """Alert when the share of photo-required action items that have a photo falls below this."""
    response_hours: float = Field(48.0, gt=0, le=24 * 30)
    """Alert when the average time to the first response to a new action item exceeds this."""
    checkin_completion: float = Field(0.9, ge=0, le=1)
    """The check-in completion target: alert below it."""


DEFAULT_COEFFICIENTS: dict[str, float] = {"A": 1.2, "B": 1.0, "C": 0.8, "D": 0.0}
"""The pay/bonus coefficients of the default grade scale (A to D), used while ``[results] coefficients`` is
unset."""


class ResultsConfig(Section):
    """The results export for payroll and HRIS (issue 20, ``perfloop results export``)."""

    coefficients: dict[str, float] | None = None
    """Pay/bonus coefficient per grade, e.g. ``{ A = 1.2, B = 1.0, C = 0.8, D = 0 }``. Every grade of
    ``[feedback] grade_scale`` needs one and no other grade may appear: checked at load, because a grade
    without a coefficient would reach payroll as an empty cell. Unset: ``DEFAULT_COEFFICIENTS`` when the scale
    is the default A to D; with another scale the export refuses until the table is set (the rest of the
    service runs on)."""

    @field_validator("coefficients")
    @classmethod
    def _in_range(cls, table: dict[str, float] | None) -> dict[str, float] | None:
        for grade, value in (table or {}).items():
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{grade} = {value} is out of range (a coefficient is 0 to 100)")
        return table

    def table(self, scale: list[str]) -> dict[str, float] | None:
        """The coefficient of every grade of ``scale``, or None when none is configured for it."""
        if self.coefficients is not None:
            return self.coefficients
        return dict(DEFAULT_COEFFICIENTS) if list(DEFAULT_COEFFICIENTS) == scale else None


class SnapshotConfig(Section):
    """The monthly growth snapshot (issue 20 #4): one card per person on the first workday of the month."""

    enabled: bool = True
    time: dt.time = dt.time(10, 0)
    """Local time, on the first workday of the month (Chinese calendar), from which the card goes out."""
    link_secret: str = ""
    """Signs the PDF download links (HMAC-SHA256), overriding the service's own key. Empty (the default): a
    random key made on first use and kept in the database, the same for every replica and restart."""
    link_hours: int = Field(72, ge=1, le=24 * 31)
    """How long a PDF download link stays valid."""
    render_processes: int = Field(0, ge=0, le=16)
    """Worker processes drawing a wave's card images; 0 = one per CPU, 1 = none (in a thread)."""


class GoalsConfig(Section):
    """The goal tree (issue 17): key results, on-track colours, visibility and the monthly adjustment."""

    max_key_results: int = Field(5, ge=1, le=5)
    """Key results per objective (1..5)."""
    at_risk_gap: float = Field(0.10, ge=0, le=1)
    """A goal is at risk (amber) when its progress is more than this share behind the time elapsed."""
    off_track_gap: float = Field(0.25, ge=0, le=1)
    """... and off track (red) when more than this share behind."""
    default_visibility: Literal["company", "department", "manager"] = "company"
    """Who may see a person's goals in a new cycle (HR can change it per cycle): everyone in the company, the
    same department, or only the person's managers (HR admins, leaders and the person's HRBP always may)."""
    adjust_window_days: int = Field(7, ge=1, le=31)
    """Monthly adjustment (月度微调): changes to confirmed goals may be proposed in the first N days of a
    month."""


class I18nConfig(Section):
    default_locale: Literal["zh-CN", "en"] = "zh-CN"


class Settings(BaseSettings):
    """The whole configuration. Unknown keys are errors so a typo never silently falls back to a default."""

    model_config = SettingsConfigDict(
        env_prefix="PERFLOOP_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    media: MediaConfig = MediaConfig()
    wecom: WeComConfig = WeComConfig()
    dingtalk: DingTalkConfig = DingTalkConfig()
    feishu: FeishuConfig = FeishuConfig()
    sim: SimConfig = SimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    escalation: EscalationConfig = EscalationConfig()
    digest: DigestConfig = DigestConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    cycles: CyclesConfig = CyclesConfig()
    outbox: OutboxConfig = OutboxConfig()
    clicks: ClicksConfig = ClicksConfig()
    conversation: ConversationConfig = ConversationConfig()
    retention: RetentionConfig = RetentionConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    grades: GradesConfig = GradesConfig()
    results: ResultsConfig = ResultsConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    snapshot: SnapshotConfig = SnapshotConfig()
    goals: GoalsConfig = GoalsConfig()
    i18n: I18nConfig = I18nConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _toml_path.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _check_coefficients(self) -> Settings:
        """``[results] coefficients`` against ``[feedback] grade_scale``: the two live in different sections,
        so only the whole configuration can compare them."""
        table, scale = self.results.coefficients, self.feedback.grade_scale
        if table is None:
            return self
        missing = [g for g in scale if g not in table]
        if missing:
            raise ValueError(
                f"results.coefficients: no coefficient for grade {', '.join(missing)} "
                f"(grade_scale is {', '.join(scale)})"
            )
        unknown = [g for g in table if g not in scale]
        if unknown:
            raise ValueError(
                f"results.coefficients: {', '.join(unknown)} not in grade_scale ({', '.join(scale)})"
            )
        return self

    @property
    def enabled_platforms(self) -> list[str]:
        return [name for name in ("wecom", "dingtalk", "feishu") if getattr(self, name).enabled]

    @property
    def sim_enabled(self) -> bool:
        if self.sim.enabled is None:
            return not self.enabled_platforms
        return self.sim.enabled


_toml_path: dict[str, Path | None] = {}


class ConfigError(Exception):
    """A configuration problem, already phrased as the one line an operator should read."""


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings; ``path=None`` means ``./perfloop.toml`` if present, else built-in defaults."""
    if path is None:
        path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    elif not path.exists():
        raise ConfigError(f"config error: file not found: {path}")
    _toml_path["path"] = path
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except ValueError as exc:  # malformed TOML or env JSON
        raise ConfigError(f"config error: {exc}") from None
    finally:
        _toml_path.pop("path", None)
    if settings.sim.enabled and settings.enabled_platforms and not settings.sim.allow_with_platforms:
        raise ConfigError(
            "config error: sim.enabled: the simulator cannot run beside a real platform "
            "unless sim.allow_with_platforms = true"
        )
    if settings.sim_enabled and not settings.sim.allow_remote and not is_loopback(settings.server.host):
        raise ConfigError(
            f"config error: sim.allow_remote: the simulator would be reachable on {settings.server.host}; "
            "bind server.host to 127.0.0.1 or set sim.allow_remote = true"
        )
    return settings


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (the simulator lets anyone act as anyone)."""
    return host in ("localhost", "::1") or host.startswith("127.")


def format_validation_error(exc: ValidationError) -> str:
    """One line naming the first bad key, e.g. ``config error: server.port: Input should be …``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif msg.startswith("Value error, "):
        inner = msg.removeprefix("Value error, ")
        key, _, rest = inner.partition(": ")
        if rest:
            loc = f"{loc}.{key}" if loc else key
            msg = rest
        else:
            msg = inner
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"config error: {loc}: {msg}{more}"


def env_snapshot() -> dict[str, str]:
    """The PERFLOOP_* variables in effect, for ``doctor`` (values of secrets masked)."""
    out: dict[str, str] = {}
    for key, value in os.environ.items():
        if key.startswith("PERFLOOP_"):
            secret = any(word in key for word in ("SECRET", "TOKEN", "KEY", "PASSWORD"))
            out[key] = "***" if secret else value
    return out
