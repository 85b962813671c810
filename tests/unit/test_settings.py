"""crawler/settings.py reads the environment: values, ``*_FILE`` files and passwords.

Each test evaluates the settings module afresh (``runpy``) under its own environment, so the
imported ``crawler.settings`` other tests use is never touched.
"""

from __future__ import annotations

import runpy
import subprocess
from pathlib import Path
from typing import Any

import pymongo.uri_parser
import pytest
import redis
from redis.connection import parse_url
from scrapy.settings import Settings

from crawler.embedded import free_port, stop_pid, valkey_binary
from crawler.frontier.config import FrontierConfig

SETTINGS = Path(__file__).resolve().parents[2] / "crawler" / "settings.py"
# A password with every character a URL or a config file treats specially.
HARD_PASSWORD = 'p@ss:w/rd%2F?#&="\\x'


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    names = {"REDIS_URL", "MONGO_URI", "REDIS_PASSWORD", "MONGO_PASSWORD", "MONGO_USER", *env}
    for name in names | {n.removesuffix("_FILE") for n in names}:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


def failure(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(SystemExit) as caught:
        load(monkeypatch, **env)
    return str(caught.value)


def secret_file(tmp_path: Path, text: str, name: str = "secret") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_file_gives_the_value_without_its_line_end(monkeypatch, tmp_path) -> None:
    settings = load(
        monkeypatch,
        CRAWL_RATE_FILE=secret_file(tmp_path, "3.5\n", "rate"),
        REDIS_URL_FILE=secret_file(tmp_path, "redis://cache:6379/2\n\n", "url"),
    )
    assert settings["CRAWL_RATE"] == 3.5
    assert settings["REDIS_URL"] == "redis://cache:6379/2"


def test_a_file_that_cannot_be_used_stops_with_its_variable(monkeypatch, tmp_path) -> None:
    missing = str(tmp_path / "missing")
    message = failure(monkeypatch, CRAWL_RATE_FILE=missing)
    assert "CRAWL_RATE_FILE" in message and missing in message and "No such file" in message
    message = failure(monkeypatch, CRAWL_RATE_FILE=str(tmp_path))
    assert "CRAWL_RATE_FILE" in message and "cannot be read" in message
    assert "empty file" in failure(monkeypatch, CRAWL_RATE_FILE=secret_file(tmp_path, "\n"))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in failure(monkeypatch, CRAWL_RATE_FILE=str(binary))


def test_a_variable_and_its_file_together_are_refused(monkeypatch, tmp_path) -> None:
    message = failure(
        monkeypatch, CRAWL_RATE="2", CRAWL_RATE_FILE=secret_file(tmp_path, "3", "rate")
    )
    assert "both CRAWL_RATE and CRAWL_RATE_FILE" in message


def test_a_malformed_value_from_a_file_names_the_file_but_never_shows_it(
    monkeypatch, tmp_path
) -> None:
    path = secret_file(tmp_path, "fast", "rate")
    message = failure(monkeypatch, CRAWL_RATE_FILE=path)
    assert f"CRAWL_RATE (read from CRAWL_RATE_FILE={path!r}) is malformed" in message
    assert "requests per second" in message
    # From the environment, a plain setting shows its value, as before.
    assert "CRAWL_RATE='fast'" in failure(monkeypatch, CRAWL_RATE="fast")


def test_server_urls_are_checked_and_never_shown(monkeypatch) -> None:
    message = failure(monkeypatch, REDIS_URL="http://:hunter2-secret@cache:6379")
    assert "REDIS_URL is malformed" in message and "redis://" in message
    assert "hunter2" not in message
    message = failure(monkeypatch, MONGO_URI="mysql://u:hunter2-secret@db/")
    assert "MONGO_URI is malformed" in message and "hunter2" not in message


def test_passwords_from_files_go_into_the_urls_percent_encoded(monkeypatch, tmp_path) -> None:
    settings = load(
        monkeypatch,
        REDIS_URL="redis://redis:6379/0",
        REDIS_PASSWORD_FILE=secret_file(tmp_path, HARD_PASSWORD + "\n", "redis"),
        MONGO_URI="mongodb://mongo:27017/?replicaSet=rs0&authSource=admin",
        MONGO_USER="tass crawler",
        MONGO_PASSWORD_FILE=secret_file(tmp_path, HARD_PASSWORD + "\n", "mongo"),
    )
    assert parse_url(settings["REDIS_URL"])["password"] == HARD_PASSWORD
    assert parse_url(settings["REDIS_URL"])["host"] == "redis"
    parsed = pymongo.uri_parser.parse_uri(settings["MONGO_URI"])
    assert (parsed["username"], parsed["password"]) == ("tass crawler", HARD_PASSWORD)
    assert parsed["nodelist"] == [("mongo", 27017)]
    assert parsed["options"]["replicaSet"] == "rs0"


def test_the_redis_url_authenticates_against_a_real_server(monkeypatch, tmp_path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [valkey_binary(), "-", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        # The password reaches the server as the compose stack gives it: a config line on
        # stdin, quoted (never on the command line).
        quoted = HARD_PASSWORD.replace("\\", "\\\\").replace('"', '\\"')
        assert server.stdin is not None
        server.stdin.write(f'requirepass "{quoted}"\n'.encode())
        server.stdin.close()
        settings = load(
            monkeypatch,
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            REDIS_PASSWORD_FILE=secret_file(tmp_path, HARD_PASSWORD + "\n"),
        )
        client = redis.Redis.from_url(settings["REDIS_URL"], retry_on_timeout=True)
        wrong = redis.Redis(host="127.0.0.1", port=port, password="wrong-password")
        for _ in range(100):  # the server may still be starting
            try:
                assert client.ping() is True
                break
            except redis.ConnectionError:
                subprocess.run(["sleep", "0.1"], check=True)
        else:
            pytest.fail("the password-protected Valkey did not answer")
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
        client.close()
        wrong.close()
    finally:
        stop_pid(server.pid)
        server.wait()


@pytest.mark.parametrize(
    "password", ["change-me-redis", "CHANGEME", "Example", "pass word", "tab\there"]
)
def test_placeholder_and_unusable_passwords_are_refused_unshown(
    monkeypatch, tmp_path, password
) -> None:
    message = failure(
        monkeypatch,
        REDIS_URL="redis://redis:6379/0",
        REDIS_PASSWORD_FILE=secret_file(tmp_path, password + "\n"),
    )
    assert "REDIS_PASSWORD (read from REDIS_PASSWORD_FILE=" in message
    assert password not in message and password.lower() not in message


def test_placeholder_message_says_how_to_make_a_password(monkeypatch) -> None:
    message = failure(monkeypatch, REDIS_URL="redis://redis:6379/0", REDIS_PASSWORD="change-me")
    assert "placeholder" in message and "make secrets" in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_PASSWORD": "Zq8-long-random"}, "REDIS_URL is empty"),
        ({"MONGO_URI": "mongodb://m/", "MONGO_PASSWORD": "Zq8-long-random"}, "MONGO_USER is not"),
        ({"MONGO_URI": "mongodb://m/", "MONGO_USER": "tass"}, "MONGO_PASSWORD is not"),
        (
            {"REDIS_URL": "redis://:inline-Zq8@r:6379/0", "REDIS_PASSWORD": "Zq8-long-random"},
            "REDIS_URL holds credentials",
        ),
    ],
)
def test_credentials_that_do_not_fit_their_url_are_refused(monkeypatch, env, expected) -> None:
    message = failure(monkeypatch, **env)
    assert expected in message
    assert "Zq8" not in message


def test_without_passwords_the_urls_are_kept_as_given(monkeypatch) -> None:
    settings = load(monkeypatch, REDIS_URL="redis://:inline@r:6379/0", MONGO_URI="mongodb://m/")
    assert settings["REDIS_URL"] == "redis://:inline@r:6379/0"
    assert settings["MONGO_URI"] == "mongodb://m/"
    assert load(monkeypatch)["REDIS_URL"] == ""  # both empty: the embedded servers


@pytest.mark.parametrize("name", ["TASS_MAX_PAGE_LINKS", "TASS_MAX_RUN_LINKS"])
@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_a_link_cap_must_be_a_positive_number(monkeypatch, name, value) -> None:
    message = failure(monkeypatch, **{name: value})
    assert f"setting {name}={value!r} is malformed" in message
    assert load(monkeypatch, **{name: "250"})[name] == 250


def test_the_frontier_refuses_a_run_link_cap_given_past_the_environment() -> None:
    settings = Settings({"TASS_MAX_RUN_LINKS": 0, "REDIS_URL": "redis://127.0.0.1:1/0"})
    with pytest.raises(ValueError, match="TASS_MAX_RUN_LINKS=0"):
        FrontierConfig.from_settings(settings)
    settings.set("TASS_MAX_RUN_LINKS", 7)
    assert FrontierConfig.from_settings(settings).max_run_links == 7


def test_the_outcome_shares_are_read_and_validated(monkeypatch) -> None:
    settings = load(monkeypatch, TASS_RUN_FAILED_SHARE="0.4", TASS_RUN_DEGRADED_SHARE="0.1")
    assert settings["TASS_RUN_FAILED_SHARE"] == 0.4
    assert settings["TASS_RUN_DEGRADED_SHARE"] == 0.1
    message = failure(monkeypatch, TASS_RUN_FAILED_SHARE="2")
    assert "TASS_RUN_FAILED_SHARE='2' is malformed" in message
    message = failure(monkeypatch, TASS_RUN_FAILED_SHARE="0.1", TASS_RUN_DEGRADED_SHARE="0.2")
    assert "TASS_RUN_DEGRADED_SHARE=0.2 is above TASS_RUN_FAILED_SHARE=0.1" in message


def test_the_consoles_into_a_worker_are_off_unless_a_setting_asks(monkeypatch) -> None:
    """Issue 11 item 9: Scrapy's RemoteControl endpoint (on by default in Scrapy 2.19) and the
    telnet console execute code in the worker; neither is on unless asked for."""
    off = load(monkeypatch)
    assert off["REMOTE_CONTROL_ENABLED"] is False and off["TELNETCONSOLE_ENABLED"] is False
    on = load(monkeypatch, REMOTE_CONTROL_ENABLED="true", TELNETCONSOLE_ENABLED="true")
    assert on["REMOTE_CONTROL_ENABLED"] is True and on["TELNETCONSOLE_ENABLED"] is True
    assert "REMOTE_CONTROL_ENABLED" in failure(monkeypatch, REMOTE_CONTROL_ENABLED="sure")


def test_every_extension_of_the_crawler_is_enabled(monkeypatch) -> None:
    # One EXTENSIONS: the progress line, the metrics and the items feed (a second assignment
    # further down the module once replaced the first, and with it two of them).
    extensions = load(monkeypatch)["EXTENSIONS"]
    assert extensions["scrapy.extensions.logstats.LogStats"] is None
    for name in (
        "crawler.extensions.progress.ClusterProgressExtension",
        "crawler.extensions.metrics.PrometheusExtension",
        "pipelines.feed.ItemsFeed",
    ):
        assert extensions[name] is not None, name
