"""The compose stack, parsed and checked against the settings it must feed."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


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


def env_example_names() -> set[str]:
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_env_example_lists_every_setting_read_from_the_environment() -> None:
    names = settings_env_names()
    assert len(names) > 10
    assert names - env_example_names() == set()


def test_env_example_lists_every_variable_compose_interpolates() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert used, "compose interpolates the secrets from .env"
    assert used - env_example_names() == set()


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "mongo", "worker", "scheduler", "replica"} <= set(services)
    assert services["replica"]["profiles"] == ["demo"]
    for name, service in services.items():
        assert "restart" in service, f"{name} has no restart policy"
    for name in ("redis", "mongo", "worker", "replica"):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_databases_publish_no_ports_and_keep_data_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    named = set(compose["volumes"])
    for name in ("redis", "mongo"):
        assert "ports" not in services[name]
        for volume in services[name]["volumes"]:
            assert volume.split(":", 1)[0] in named, f"{name}: {volume} is not a named volume"


def test_redis_is_persistent_and_password_protected(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "--requirepass" in command


def test_mongo_is_a_single_node_replica_set_with_auth(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    script = "\n".join(mongo["entrypoint"])
    assert "--replSet rs0" in script and "--keyFile" in script
    assert set(mongo["environment"]) == {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"}
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])


def test_workers_scale_and_reach_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = services["worker"]
    # `--scale worker=N` needs no fixed container name and no published port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][:3] == ["scrapy", "crawl", "tass"]
    assert "mode=worker" in worker["command"]
    assert services["scheduler"]["command"] == ["scrapy", "schedule"]
    for name in ("worker", "scheduler"):
        service = services[name]
        env = service["environment"]
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")
        assert "@redis:6379" in env["REDIS_URL"]
        assert "@mongo:27017" in env["MONGO_URI"] and "replicaSet=rs0" in env["MONGO_URI"]
        assert service["env_file"] == ".env"
        for dependency in ("redis", "mongo"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy"


def test_compose_commands_exist() -> None:
    assert (REPO / "crawler" / "commands" / "schedule.py").is_file()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "secantusdb" not in dockerfile and "[embedded" not in dockerfile


def test_settings_module_holds_only_settings() -> None:
    """Scrapy takes every upper-case name of the module as a setting: none may be a module."""
    import types

    import crawler.settings as settings

    names = [n for n in dir(settings) if n.isupper()]
    assert names and not [n for n in names if isinstance(getattr(settings, n), types.ModuleType)]
