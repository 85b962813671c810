"""The compose stack, the image and its lock, parsed and checked against what they must feed;
and the compose file validated by a real compose binary where one is installed."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from crawler import defaults

REPO = Path(__file__).resolve().parents[2]
CRAWLER_SERVICES = ("worker", "scheduler")
IMAGE_SERVICES = ("worker", "scheduler", "replica")
SECRETS_DIR = "/run/secrets/"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def settings_env_names() -> set[str]:
    """Every environment variable crawler/settings.py reads (its ``_env("NAME", ...)`` calls)."""
    tree = ast.parse((REPO / "crawler" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_env"
        and isinstance(node.args[0], ast.Constant)
    }


def env_example() -> dict[str, str]:
    text = (REPO / ".env.example").read_text()
    return dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_env_example_lists_every_setting_read_from_the_environment() -> None:
    names = settings_env_names()
    assert {"REDIS_PASSWORD", "MONGO_PASSWORD", "MONGO_USER"} <= names
    assert names - set(env_example()) == set()


def test_env_example_lists_every_variable_compose_interpolates() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    assert used, "compose interpolates the MongoDB user from .env"
    assert used - set(env_example()) == set()


def test_env_example_holds_no_password_and_names_the_project(compose) -> None:
    values = env_example()
    assert not [n for n in values if "PASSWORD" in n and values[n].strip()]
    assert values["COMPOSE_PROJECT_NAME"] == "tass-crawler"
    # docker-compose v1 rejects a top-level `name:`; the project name comes from .env.
    assert "name" not in compose


def test_services(services) -> None:
    assert {"redis", "mongo", "worker", "scheduler", "replica"} <= set(services)
    assert services["replica"]["profiles"] == ["demo"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["logging"]["options"]["max-size"], f"{name}: logs are not rotated"
        assert service["logging"]["options"]["max-file"], name
        assert service["mem_limit"] and service["cpus"], f"{name} has no resource limits"
        assert "stop_grace_period" in service, name
    for name in ("redis", "mongo", "worker", "replica"):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_databases_publish_no_ports_and_keep_data_in_named_volumes(compose, services) -> None:
    named = set(compose["volumes"])
    for name in ("redis", "mongo"):
        assert "ports" not in services[name]
        for volume in services[name]["volumes"]:
            assert volume.split(":", 1)[0] in named, f"{name}: {volume} is not a named volume"


def test_no_password_in_an_environment_a_command_line_or_a_health_check(services) -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{[A-Z_]*PASSWORD", text), "a password interpolated from .env"
    for name, service in services.items():
        for key in service.get("environment", {}):
            assert "PASSWORD" not in key or key.endswith("_FILE"), f"{name}: {key}"
        for url_key in ("REDIS_URL", "MONGO_URI"):
            url = service.get("environment", {}).get(url_key, "")
            assert "@" not in url, f"{name}: {url_key} holds credentials"
    redis = services["redis"]
    assert "--requirepass" not in " ".join(redis["command"])
    assert "REDISCLI_AUTH" not in str(redis) and " -a " not in str(redis["healthcheck"])
    mongo_check = " ".join(services["mongo"]["healthcheck"]["test"])
    assert " -p " not in mongo_check and "MONGO_INITDB_ROOT_PASSWORD_FILE" in mongo_check


def test_passwords_come_from_compose_secret_files(compose, services) -> None:
    secrets = compose["secrets"]
    assert set(secrets) == {"redis_password", "mongo_password"}
    for secret in secrets.values():
        assert secret["file"].startswith("./secrets/")
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE"):
                assert value.startswith(SECRETS_DIR), f"{name}: {key}"
                assert value.removeprefix(SECRETS_DIR) in service["secrets"], f"{name}: {key}"
    assert "/run/secrets/redis_password" in "\n".join(services["redis"]["command"])
    assert "/run/secrets/redis_password" in services["redis"]["healthcheck"]["test"][1]
    mongo_env = services["mongo"]["environment"]
    assert mongo_env["MONGO_INITDB_ROOT_PASSWORD_FILE"] == "/run/secrets/mongo_password"
    assert "MONGO_INITDB_ROOT_PASSWORD" not in mongo_env
    for name in CRAWLER_SERVICES:
        env = services[name]["environment"]
        assert env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
        assert env["MONGO_PASSWORD_FILE"] == "/run/secrets/mongo_password"
        assert env["MONGO_USER"] == mongo_env["MONGO_INITDB_ROOT_USERNAME"]


def test_redis_is_persistent_capped_and_drops_root(services) -> None:
    script = "\n".join(services["redis"]["command"])
    assert "--appendonly yes" in script and "--maxmemory-policy noeviction" in script
    # Config from stdin, through the image's entrypoint (which drops root for valkey).
    assert "exec docker-entrypoint.sh valkey-server - " in script


def test_mongo_is_a_single_node_replica_set_with_auth(services) -> None:
    mongo = services["mongo"]
    script = "\n".join(mongo["entrypoint"])
    assert "--replSet rs0" in script and "--keyFile" in script
    assert "replSetInitiate" in " ".join(mongo["healthcheck"]["test"])


def test_workers_scale_and_reach_the_services(services) -> None:
    worker = services["worker"]
    # `--scale worker=N` needs no fixed container name and no published port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][:3] == ["scrapy", "crawl", "tass"]
    assert "mode=worker" in worker["command"]
    assert services["scheduler"]["command"] == ["scrapy", "schedule"]
    for name in CRAWLER_SERVICES:
        service = services[name]
        env = service["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["MONGO_URI"].startswith("mongodb://mongo:27017/")
        assert "replicaSet=rs0" in env["MONGO_URI"]
        assert service["env_file"] == ".env"
        for dependency in ("redis", "mongo"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy"


def test_the_image_is_built_once_and_before_it_is_needed(services) -> None:
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["worker"]
    for name in IMAGE_SERVICES:
        assert services[name]["image"] == "tass-crawler:latest", name
        assert services[name]["init"] is True, f"{name}: PID 1 must pass SIGTERM on"
    for name in ("scheduler", "replica"):
        assert services[name]["depends_on"]["worker"]["condition"] == "service_started"


def longest_close() -> float:
    """How long a worker stopped during a MongoDB outage may take to spill and exit: the stop
    is noticed after one failed attempt and a backoff, then the close deadline, then the
    dedupe's and the store's attempts under way (each one TASS_MONGO_TIMEOUT), and ~10 s for
    the frontier's own close (measured in the compose lab: 141.8 s with the defaults)."""
    attempt = defaults.TASS_MONGO_TIMEOUT
    return attempt + defaults.BACKOFF_MAX + defaults.TASS_STORE_CLOSE_DEADLINE + 2 * attempt + 10


def test_a_stopped_worker_can_flush_or_spill_before_it_is_killed(services) -> None:
    grace = seconds(services["worker"]["stop_grace_period"])
    assert grace >= longest_close()
    assert env_example()["TASS_STORE_CLOSE_DEADLINE"] == f"{defaults.TASS_STORE_CLOSE_DEADLINE:.0f}"


def test_the_spill_folder_is_a_volume_the_crawler_writes(compose, services) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    data_dir = re.search(r"TASS_DATA_DIR=(\S+)", dockerfile)[1]
    assert f"install -d -o crawler -g crawler -m 0750 {data_dir}" in dockerfile
    assert f"VOLUME {data_dir}" in dockerfile
    assert "crawler-data" in compose["volumes"]
    for name in CRAWLER_SERVICES:
        service = services[name]
        # environment: wins over a TASS_DATA_DIR in .env (env_file).
        assert service["environment"]["TASS_DATA_DIR"] == data_dir
        assert f"crawler-data:{data_dir}" in service["volumes"]


def test_a_hung_worker_is_restarted_by_its_health_check(services) -> None:
    check = services["worker"]["healthcheck"]["test"]
    assert check[:4] == ["CMD", "python", "-m", "crawler.health"]
    restart_after = float(check[check.index("--restart-after") + 1])
    assert restart_after > 60  # past the heartbeat's own staleness, seen over several checks


def test_the_dockerfile_installs_the_lock_before_the_code() -> None:
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    first_code = min(
        i for i, line in enumerate(lines) if re.match(r"COPY (crawler|pipelines)", line)
    )
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert "--require-hashes -r requirements.lock" in lines[install]
    assert lines.index("COPY requirements.lock ./") < install < first_code
    assert not [line for line in lines[first_code:] if "pip install" in line]
    assert lines[-2:] == ["USER crawler", 'CMD ["scrapy", "crawl", "tass", "-a", "mode=worker"]']
    text = "\n".join(lines)
    assert "secantusdb" not in text and "[embedded" not in text


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    entries = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert entries[0] == "*"
    allowed = {e.removeprefix("!").rstrip("/") for e in entries if e.startswith("!")}
    assert allowed == {"requirements.lock", "scrapy.cfg", "crawler", "pipelines", "replica"}
    copied = re.findall(r"^COPY (\S+)", (REPO / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert set(copied) == allowed


def test_the_lock_pins_every_image_requirement_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in ("replica", "export", "metrics"):
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    text = (REPO / "requirements.lock").read_text()
    assert "make lock" in text.splitlines()[1]
    pins = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, flags=re.MULTILINE)
    }
    for requirement in wanted:
        version = pins.get(canonicalize_name(requirement.name))
        assert version, f"{requirement.name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(version), f"{requirement} vs {version}: make lock"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1].strip())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(_compose_command() is None, reason="no docker-compose or docker compose")
@pytest.mark.parametrize("profile", [[], ["--profile", "demo"]])
def test_a_compose_binary_accepts_the_file(tmp_path, profile) -> None:
    command = _compose_command()
    assert command is not None
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    (tmp_path / "secrets").mkdir()
    for name in ("redis_password", "mongo_password"):
        (tmp_path / "secrets" / name).write_text("Zq8-a-generated-password\n")
    config = subprocess.run(
        [*command, *profile, "config"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert config.returncode == 0, config.stderr
    rendered = yaml.safe_load(config.stdout)
    assert {"redis", "mongo", "worker", "scheduler", "replica"} <= set(rendered["services"])
    assert rendered["services"]["worker"]["stop_grace_period"] in ("180s", "3m0s", 180)
    assert "Zq8" not in config.stdout  # the secret files are named, never read into it
