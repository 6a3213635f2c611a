"""Configuration: located errors, environment interpolation and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from callswitch.config import ConfigError, load_config, parse_duration, parse_rate

BASE = """\
http:
  listen: 127.0.0.1:8080
database:
  dsn: postgresql://postgres@127.0.0.1/cs
ami:
  secret: ${AMI_SECRET}
sites:
  shop:
    site_key: pk_shop_12345
    allowed_origins:
      - https://www.example.com
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callswitch.yaml"
    path.write_text(text)
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env if env is not None else {"AMI_SECRET": "s"})
    return [str(p) for p in info.value.problems]


def test_example_config_loads() -> None:
    config = load_config(Path("config/callswitch.example.yaml"), env={})
    assert config.sites["shop"].site_key == "pk_shop_8f3a9c2e"
    assert config.routing_file and config.routing_file.endswith("config/routing.example.yaml")
    assert config.database.dsn is None


def test_env_interpolation_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    config = load_config(path, env={"AMI_SECRET": "from-env", "CALLSWITCH_AMI__PORT": "5039",
                                    "CALLSWITCH_SITES__SHOP__API_KEY": "sk_0123456789abcdef0"})
    assert config.ami.secret == "from-env"
    assert config.ami.port == 5039
    assert config.sites["shop"].api_key == "sk_0123456789abcdef0"
    assert "from-env" not in repr(config)  # secrets stay out of reprs (and so out of logs)


def test_error_names_file_line_column_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("https://www.example.com", "www.example.com"))
    assert errors_of(path) == [f"{path}:11:9: sites.shop.allowed_origins[0]: not a URL"]


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    text = BASE.replace("127.0.0.1:8080", "nohost").replace("postgresql://", "mysql://") + "  other:\n    name: x\n"
    text += "bogus: 1\n"
    errs = errors_of(tmp_path.joinpath("x") and write(tmp_path, text))
    assert any(":2:11: http.listen: expected HOST:PORT" in e for e in errs)
    assert any(":4:8: database.dsn: expected a postgresql:// URL" in e for e in errs)
    assert any("sites.other.site_key: required" in e for e in errs)
    assert any("bogus: unknown key" in e for e in errs)


def test_missing_environment_variable_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    assert errors_of(path, env={}) == [
        f"{path}:6:11: ami.secret: environment variable AMI_SECRET is not set (use ${{AMI_SECRET:-}})"]


def test_env_override_errors_say_where_they_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    errs = errors_of(path, env={"AMI_SECRET": "s", "CALLSWITCH_AMI__PORT": "http"})
    assert len(errs) == 1 and "(env CALLSWITCH_AMI__PORT)" in errs[0] and "ami.port: expected an integer" in errs[0]


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (("  shop:\n", "  Shop!:\n"), "sites.Shop!: a site id is lowercase"),
        (("pk_shop_12345", "pk"), "sites.shop.site_key: too short"),
        (("    allowed_origins:", "    time_zone: Mars/Base\n    allowed_origins:"), "not a time zone"),
        (("    allowed_origins:", "    phone: {default_region: XX}\n    allowed_origins:"), "not a region"),
        (("    allowed_origins:", "    phone: {blocked_prefixes: [881]}\n    allowed_origins:"), "blocked_prefixes[0]"),
        (("    allowed_origins:", "    phone: {own_numbers: [abc]}\n    allowed_origins:"),
         "own_numbers[0]: not valid"),
        (("    allowed_origins:", "    allowed_origins: [https://x.example/path]\n    x_origins:"), "no path"),
        (("http:\n", "http:\n  max_body_bytes: 10\n"), "http.max_body_bytes: must be at least 1024"),
        (("http:\n", "intake:\n  rate_limits: {per_ip: lots}\nhttp:\n"), "intake.rate_limits.per_ip: not a rate"),
        (("http:\n", "admin: {token: short}\nhttp:\n"), "admin.token: too short"),
        (("  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  listen: 127.0.0.1:8081\n"), "duplicate key"),
    ],
)
def test_each_check_reports_its_key(tmp_path: Path, replace: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, BASE.replace(*replace))
    errs = errors_of(path)
    assert any(expected in e for e in errs), errs
    assert all(e.startswith(f"{path}:") for e in errs)


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "http: [1,\n")
    (err,) = errors_of(path)
    assert err.startswith(f"{path}:2:1: ") and "YAML syntax error" in err


def test_unreadable_file(tmp_path: Path) -> None:
    (err,) = errors_of(tmp_path / "missing.yaml")
    assert "cannot read" in err


def test_durations_and_rates() -> None:
    assert parse_duration("15m") == 900 and parse_duration(3) == 3 and parse_duration("250ms") == 0.25
    rate = parse_rate("3/hour")
    assert rate is not None and (rate.count, rate.period) == (3, 3600)
    rate = parse_rate("5/30s")
    assert rate is not None and rate.period == 30
    assert parse_rate("off") is None
    with pytest.raises(ValueError):
        parse_rate("0/minute")


def test_dialing_section_and_several_asterisk_servers(tmp_path: Path) -> None:
    text = BASE.replace("ami:\n  secret: ${AMI_SECRET}\n", """\
ami:
  - {name: pbx1, host: 10.0.0.1, secret: "${AMI_SECRET}"}
  - {name: pbx2, host: 10.0.0.2, port: 5039, secret: "${AMI_SECRET}"}
dialing:
  max_concurrent_calls: 40
  max_calls_per_destination: ~
  retry_backoff: [1m, 10m, 1h]
  max_age: 2d
""")
    config = load_config(write(tmp_path, text), env={"AMI_SECRET": "s"})
    assert [(s.name, s.host, s.port) for s in config.ami_servers] == [("pbx1", "10.0.0.1", 5038),
                                                                       ("pbx2", "10.0.0.2", 5039)]
    assert config.ami is config.ami_servers[0]
    assert config.dialing.max_concurrent_calls == 40 and config.dialing.max_calls_per_destination is None
    assert config.dialing.retry_backoff == (60, 600, 3600) and config.dialing.max_age == 172800


def test_duplicate_server_names_and_bad_dialing_values(tmp_path: Path) -> None:
    text = BASE.replace("ami:\n  secret: ${AMI_SECRET}\n", """\
ami:
  - {name: pbx, host: a}
  - {name: pbx, host: b}
dialing:
  retry_backoff: [soon]
  customer_retries: -1
""")
    errs = errors_of(write(tmp_path, text))
    assert any("ami[1].name: two servers are named 'pbx'" in e for e in errs), errs
    assert any("dialing.retry_backoff[0]: not a duration" in e for e in errs), errs
    assert any("dialing.customer_retries: must be at least 0" in e for e in errs), errs


def test_http_limits_and_daily_caps_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), env={"AMI_SECRET": "s"})
    http = config.http
    assert (http.header_timeout, http.body_timeout, http.max_header_bytes, http.max_headers) == (10.0, 15.0, 8190, 64)
    assert config.sites["shop"].phone.max_per_day == 5
    assert config.sites["shop"].max_requests_per_day is None


def test_http_limits_and_daily_caps_are_read(tmp_path: Path) -> None:
    text = BASE.replace("http:\n", "http:\n  header_timeout: 5s\n  body_timeout: 1m\n  max_header_bytes: 4096\n"
                                   "  max_headers: 32\n")
    text = text.replace("sites:\n", "intake:\n  max_requests_per_day: 2000\n  phone: {max_per_day: 3}\nsites:\n")
    text += "  other:\n    site_key: pk_other_12345\n    max_requests_per_day: off\n    phone: {max_per_day: off}\n"
    config = load_config(write(tmp_path, text), env={"AMI_SECRET": "s"})
    assert (config.http.header_timeout, config.http.body_timeout) == (5.0, 60.0)
    assert (config.http.max_header_bytes, config.http.max_headers) == (4096, 32)
    shop, other = config.sites["shop"], config.sites["other"]
    assert (shop.phone.max_per_day, shop.max_requests_per_day) == (3, 2000)  # the intake defaults
    assert (other.phone.max_per_day, other.max_requests_per_day) == (None, None)  # switched off for one site


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (("http:\n", "http:\n  header_timeout: 0.5s\n"), ":2:19: http.header_timeout: must be between 1s and 300s"),
        (("http:\n", "http:\n  body_timeout: soon\n"),
         ":2:17: http.body_timeout: not a duration: expected a duration like 30s, 15m, 2h"),
        (("http:\n", "http:\n  max_header_bytes: 100\n"), ":2:21: http.max_header_bytes: must be at least 1024"),
        (("http:\n", "http:\n  max_headers: 1000\n"), ":2:16: http.max_headers: must be at most 256"),
        (("sites:\n", "intake:\n  phone: {max_per_day: 0}\nsites:\n"),
         ":8:24: intake.phone.max_per_day: must be at least 1"),
        (("sites:\n", "intake:\n  max_requests_per_day: lots\nsites:\n"),
         ":8:25: intake.max_requests_per_day: expected an integer, got string 'lots'"),
        (("    allowed_origins:\n", "    max_requests_per_day: -1\n    allowed_origins:\n"),
         ":10:27: sites.shop.max_requests_per_day: must be at least 1"),
    ],
)
def test_http_limits_and_daily_caps_errors_are_located(
    tmp_path: Path, replace: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, BASE.replace(*replace))
    assert errors_of(path) == [f"{path}{expected}"]
