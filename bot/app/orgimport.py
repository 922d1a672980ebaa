"""``perfloop org import FILE.csv``: load an organisation before (or without) connecting a messenger.

Columns: ``department, user_id, name, manager_id, hrbp_id, roles, timezone, locale`` (the last five may be
empty; roles are separated by ``;`` or ``|``; manager/HRBP refer to another row's user_id). A bad row stops
the import with its line number and field, and nothing is written (one transaction).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.base import Org, OrgDepartment, OrgMember

REQUIRED_COLUMNS = ("department", "user_id", "name")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, "manager_id", "hrbp_id", "roles", "timezone", "locale")
VALID_ROLES = {"employee", "manager", "hrbp", "hr_admin", "leader"}
MAX_ROWS = 200_000


class CsvImportError(ValueError):
    """One line an operator can act on, e.g. ``line 7: roles: unknown role 'boss'``."""


class CsvRow(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    department: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\s|]+$")
    name: str = Field(min_length=1, max_length=200)
    manager_id: str | None = None
    hrbp_id: str | None = None
    roles: list[str] = ["employee"]
    timezone: str | None = None
    locale: str | None = None

    @field_validator("manager_id", "hrbp_id", "timezone", "locale", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, v: object) -> object:
        if isinstance(v, str):
            parts = [p.strip() for p in v.replace("|", ";").replace(",", ";").split(";") if p.strip()]
            return parts or ["employee"]
        return v

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if r not in VALID_ROLES]
        if bad:
            raise ValueError(f"unknown role {bad[0]!r} (valid: {', '.join(sorted(VALID_ROLES))})")
        return sorted(set(v) | {"employee"})

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None and v not in _zones():
            raise ValueError(f"unknown IANA timezone {v!r}")
        return v

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, v: str | None) -> str | None:
        if v is not None and v not in ("zh-CN", "en"):
            raise ValueError("locale must be zh-CN or en")
        return v


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def parse_org_csv(data: bytes) -> Org:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvImportError("file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        return _parse_rows(reader, header)
    except csv.Error as exc:  # a stray carriage return, an unterminated quote at the end…
        raise CsvImportError(f"line {reader.line_num}: not valid CSV: {exc}") from None


def _parse_rows(reader: csv.DictReader[str], header: list[str]) -> Org:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CsvImportError(f"line 1: missing column(s): {', '.join(missing)}")
    reader.fieldnames = header
    rows: list[CsvRow] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if len(rows) >= MAX_ROWS:
            raise CsvImportError(f"line {line}: more than {MAX_ROWS} rows")
        if None in row:
            raise CsvImportError(f"line {line}: more fields than the header has")
        try:
            parsed = CsvRow.model_validate({k: v for k, v in row.items() if k in KNOWN_COLUMNS})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"][:1]) or "row"
            msg = err["msg"].removeprefix("Value error, ")
            raise CsvImportError(f"line {line}: {field}: {msg}") from None
        if parsed.user_id in seen:
            raise CsvImportError(
                f"line {line}: user_id: {parsed.user_id!r} already on line {seen[parsed.user_id]}"
            )
        seen[parsed.user_id] = line
        rows.append(parsed)
    if not rows:
        raise CsvImportError("the file has no rows")
    lines = {r.user_id: seen[r.user_id] for r in rows}
    for r in rows:
        for field, ref in (("manager_id", r.manager_id), ("hrbp_id", r.hrbp_id)):
            if ref is not None and ref not in lines:
                raise CsvImportError(f"line {lines[r.user_id]}: {field}: no row with user_id {ref!r}")
    departments = {r.department: OrgDepartment(id=r.department, name=r.department) for r in rows}
    members = [
        OrgMember(
            user_id=r.user_id,
            name=r.name,
            department_ids=[r.department],
            manager_id=r.manager_id,
            hrbp_id=r.hrbp_id,
            roles=r.roles,
            timezone=r.timezone,
            locale=r.locale,
        )
        for r in rows
    ]
    return Org(departments=list(departments.values()), members=members)


def read_org_csv(path: Path) -> Org:
    if not path.is_file():
        raise CsvImportError(f"file not found: {path}")
    return parse_org_csv(path.read_bytes())
