"""The Kubernetes manifests (kubernetes/): every resource validated against the Kubernetes
schemas bundled with kubernetes-validate (offline, strict: an unknown field fails), as written
and, where kubectl is installed, as kustomize renders each deployable folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.test_compose import longest_close

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "kubernetes"
DEPLOYABLE = ("workers", "cronjob")
# The oldest release with everything used here (CronJob timeZone went stable in 1.27), and
# the newest the validator knows.
VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())


def kustomization(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def resources(folder: Path) -> list[dict[str, Any]]:
    """The resources a kustomization folder lists (its own files, not its components')."""
    docs = []
    for name in kustomization(folder).get("resources", []):
        docs += [d for d in yaml.safe_load_all((folder / name).read_text()) if d]
    return docs


def all_resources() -> list[dict[str, Any]]:
    return [
        doc
        for folder in (ROOT / "common", *(ROOT / d for d in DEPLOYABLE))
        for doc in resources(folder)
    ]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    return doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def validate(doc: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version) -> None:
    docs = all_resources()
    assert {d["kind"] for d in docs} == {"Namespace", "Deployment", "CronJob"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_what_kubernetes_would() -> None:
    worker = by_kind(all_resources(), "Deployment", "tass-worker")
    broken = yaml.safe_load(yaml.safe_dump(worker))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["cmd"] = ["x"]
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        validate(broken)
    broken = yaml.safe_load(yaml.safe_dump(worker))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        validate(broken)


def test_each_deployable_folder_lists_files_that_exist() -> None:
    common = kustomization(ROOT / "common")
    assert common["kind"] == "Component"
    for folder in DEPLOYABLE:
        spec = kustomization(ROOT / folder)
        assert spec["components"] == ["../common"]
        for name in spec["resources"]:
            assert (ROOT / folder / name).is_file(), f"{folder}: {name}"
    assert (ROOT / "common" / "crawler.env").is_file()
    generated = [g["name"] for g in common["secretGenerator"]]
    assert generated == ["tass-crawler-passwords"]


def test_workers_are_probed_with_the_health_check_and_outlast_the_close_deadline() -> None:
    docs = all_resources()
    worker = by_kind(docs, "Deployment", "tass-worker")
    spec = pod_spec(worker)
    assert spec["terminationGracePeriodSeconds"] >= longest_close()
    [container] = spec["containers"]
    assert container["command"] == ["scrapy", "crawl", "tass", "-a", "mode=worker"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:3] == ["python", "-m", "crawler.health"], probe
    # A Redis outage must not restart every worker: liveness accepts it, readiness shows it.
    assert "--redis-away-ok" in container["livenessProbe"]["exec"]["command"]
    assert "--redis-away-ok" not in container["readinessProbe"]["exec"]["command"]


def test_one_scheduler_and_a_cron_job_that_never_overlaps() -> None:
    docs = all_resources()
    scheduler = by_kind(docs, "Deployment", "tass-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert pod_spec(scheduler)["containers"][0]["command"] == ["scrapy", "schedule"]
    cron = by_kind(docs, "CronJob", "tass-crawl")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert pod_spec(cron)["containers"][0]["command"] == ["scrapy", "crawl", "tass"]
    assert pod_spec(cron)["terminationGracePeriodSeconds"] >= longest_close()


def test_passwords_are_files_from_the_secret_never_environment() -> None:
    settings = dict(
        line.split("=", 1)
        for line in (ROOT / "common" / "crawler.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert not [k for k in settings if "PASSWORD" in k and not k.endswith("_FILE")]
    assert "@" not in settings["REDIS_URL"] and "@" not in settings["MONGO_URI"]
    for doc in all_resources():
        if doc["kind"] not in ("Deployment", "CronJob"):
            continue
        spec = pod_spec(doc)
        [secret] = [v for v in spec["volumes"] if "secret" in v]
        assert secret["secret"]["secretName"] == "tass-crawler-passwords"
        for container in spec["containers"]:
            assert "env" not in container, "settings come from the ConfigMap only"
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            for key in ("REDIS_PASSWORD_FILE", "MONGO_PASSWORD_FILE"):
                assert settings[key].startswith(mounts[secret["name"]] + "/")
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["runAsNonRoot"] is True


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("folder", DEPLOYABLE)
def test_what_kustomize_renders_validates_and_holds_together(tmp_path, folder) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(ROOT, copy)
    (copy / "common" / "secrets").mkdir(exist_ok=True)
    for name in ("redis_password", "mongo_password"):
        (copy / "common" / "secrets" / name).write_text("Zq8-generated\n")
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(copy / folder)], capture_output=True, text=True, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    for doc in docs:
        validate(doc)
    secret = by_kind(docs, "Secret", "tass-crawler-passwords")
    config = by_kind(docs, "ConfigMap", "tass-crawler-settings")
    assert set(secret["data"]) == {"redis_password", "mongo_password"}
    for doc in docs:
        if doc["kind"] in ("Namespace",):
            continue
        assert doc["metadata"]["namespace"] == "tass-crawler", doc["kind"]
        if doc["kind"] in ("Deployment", "CronJob"):
            spec = pod_spec(doc)
            names = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
            assert names == {secret["metadata"]["name"]}  # the generated, hashed name
            for container in spec["containers"]:
                assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]
                assert container["image"] == "tass-crawler:latest"
