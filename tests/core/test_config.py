from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.cli import main
from bot.core.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perfloop.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file() -> None:
    s = load_settings()
    assert s.server.port == 8080
    assert s.database.url.startswith("sqlite+aiosqlite")
    assert s.sim_enabled is True
    assert s.wecom.api_base == "https://qyapi.weixin.qq.com"


def test_file_is_read_and_default_path_used(tmp_path: Path) -> None:
    write(tmp_path, '[server]\nport = 9100\n[i18n]\ndefault_locale = "en"\n')
    s = load_settings()  # ./perfloop.toml
    assert s.server.port == 9100
    assert s.i18n.default_locale == "en"


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[server]\nport = 9100\n")
    monkeypatch.setenv("PERFLOOP_SERVER__PORT", "9000")
    monkeypatch.setenv("PERFLOOP_WECOM__SECRET", "s3cret")
    s = load_settings(path)
    assert s.server.port == 9000
    assert s.wecom.secret == "s3cret"


def test_unknown_key_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"^config error: server\.prot: unknown key$"):
        load_settings(path)


def test_unknown_section_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[servr]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"servr: unknown key"):
        load_settings(path)


def test_wrong_type_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=r"^config error: server\.port: "):
        load_settings(path)


def test_wrong_type_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLOOP_SCHEDULE__TICK_SECONDS", "often")
    with pytest.raises(ConfigError, match=r"schedule\.tick_seconds"):
        load_settings()


def test_unknown_default_timezone_named(tmp_path: Path) -> None:
    # The fallback for people with a bad zone must itself be a zone: refused at start-up, not at 16:00.
    path = write(tmp_path, '[schedule]\ndefault_timezone = "Asia/Shanghia"\n')
    with pytest.raises(ConfigError, match=r"^config error: schedule\.default_timezone: .*Asia/Shanghia"):
        load_settings(path)


def test_platform_enabled_without_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[wecom]\nenabled = true\ncorp_id = "ww1"\nagent_id = 1000002\ntoken = "t"\nencoding_aes_key = "k"\n',
    )
    with pytest.raises(ConfigError, match=r"^config error: wecom\.secret: required when enabled = true$"):
        load_settings(path)


def test_platform_secret_from_env_completes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        '[wecom]\nenabled = true\ncorp_id = "ww1"\nagent_id = 1000002\ntoken = "t"\nencoding_aes_key = "k"\n',
    )
    monkeypatch.setenv("PERFLOOP_WECOM__SECRET", "from-env")
    s = load_settings(path)
    assert s.enabled_platforms == ["wecom"]
    assert s.sim_enabled is False  # auto: off when a real platform is on


def test_sim_beside_platform_needs_explicit_allow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLOOP_FEISHU__ENABLED", "true")
    monkeypatch.setenv("PERFLOOP_FEISHU__APP_ID", "cli_x")
    monkeypatch.setenv("PERFLOOP_FEISHU__APP_SECRET", "y")
    monkeypatch.setenv("PERFLOOP_FEISHU__VERIFICATION_TOKEN", "z")
    monkeypatch.setenv("PERFLOOP_SIM__ENABLED", "true")
    with pytest.raises(ConfigError, match=r"sim\.enabled"):
        load_settings()
    monkeypatch.setenv("PERFLOOP_SIM__ALLOW_WITH_PLATFORMS", "true")
    assert load_settings().sim_enabled is True


def test_malformed_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError, match="config error"):
        load_settings(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(Path("nope.toml"))


def test_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[server]\nport = 0\n")
    assert main(["--config", str(path), "doctor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: server.port:")
    assert "\n" not in err and "Traceback" not in err


def test_example_config_is_valid_and_documents_every_key() -> None:
    import tomllib

    from bot.core.config import Settings

    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    Settings.model_validate(data)
    text = example.read_text(encoding="utf-8")
    for section, model in Settings.model_fields.items():
        sub = model.annotation
        assert f"[{section}]" in text, section
        for key in sub.model_fields:  # type: ignore[union-attr]
            documented = f"\n{key} =" in text or f"\n# {key} =" in text or f"[{section}.{key}]" in text
            assert documented, f"{section}.{key} undocumented"


def test_simulator_refuses_non_loopback_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLOOP_SERVER__HOST", "0.0.0.0")
    with pytest.raises(ConfigError, match=r"sim\.allow_remote"):
        load_settings()
    monkeypatch.setenv("PERFLOOP_SIM__ENABLED", "false")
    assert load_settings().sim_enabled is False
    monkeypatch.setenv("PERFLOOP_SIM__ENABLED", "true")
    monkeypatch.setenv("PERFLOOP_SIM__ALLOW_REMOTE", "true")
    assert load_settings().sim_enabled is True
