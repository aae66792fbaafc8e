"""Every service and `sn51` command the deploy files name exists in the package; topics match the topic map."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.topics import ALL_TOPICS, DEAD_LETTER
from sn51.localinfra import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def command_paths() -> set[tuple[str, ...]]:
    from sn51 import cli
    from sn51.infra import command_paths

    if not cli.app.registered_commands:
        cli._register()
    return command_paths(cli.app)


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return compose


def _assert_runs_a_service(argv: list[str], service: str, paths: set[tuple[str, ...]]) -> None:
    """argv (after the `sn51` entrypoint) is `service <service>`, a command the app has."""
    assert argv[0] in {p[0] for p in paths}, f"`sn51 {argv[0]}` is not a command of the app"
    assert argv == ["service", service], argv
    assert service in SERVICES
    assert importlib.util.find_spec(f"services.{service}") is not None


def test_the_image_runs_the_sn51_console_script() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["sn51"\]$', dockerfile, re.M)
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sn51"] == "sn51.cli:main"


def test_compose_runs_exactly_the_four_services(command_paths: set[tuple[str, ...]]) -> None:
    services = _compose()["services"]
    ours = {name: spec for name, spec in services.items() if "build" in spec or spec["image"].startswith("sn51")}
    assert set(ours) == set(SERVICES)
    for name, spec in ours.items():
        _assert_runs_a_service(spec["command"], name, command_paths)


def test_compose_creates_every_topic_as_an_event_log() -> None:
    job = _compose()["services"]["topics"]
    event_logs = job["environment"]["EVENT_LOG_TOPICS"].split()
    assert sorted([*event_logs, job["environment"]["DEAD_LETTER_TOPIC"]]) == sorted(ALL_TOPICS)
    assert DEAD_LETTER not in event_logs
    script = "\n".join(job["command"])
    assert "cleanup.policy=delete" in script and 'create "$$topic" -1' in script
    assert job["depends_on"]["kafka"]["condition"] == "service_healthy"
    kafka_env = _compose()["services"]["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def test_k8s_deployments_run_exactly_the_four_services(command_paths: set[tuple[str, ...]]) -> None:
    deployments = [d for d in _manifests() if d["kind"] == "Deployment"]
    seen = []
    for deployment in deployments:
        service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        assert [c["image"] for c in containers] == ["sn51"]
        assert "command" not in containers[0]  # the image's entrypoint is `sn51`
        _assert_runs_a_service(containers[0]["args"], service, command_paths)
        seen.append(service)
    assert sorted(seen) == sorted(SERVICES)


def test_k8s_topics_match_the_topic_map() -> None:
    topics = {d["spec"]["topicName"]: d["spec"] for d in _manifests() if d["kind"] == "KafkaTopic"}
    assert sorted(topics) == sorted(ALL_TOPICS)
    for name, spec in topics.items():
        assert spec["config"]["cleanup.policy"] == "delete"
        assert (spec["config"]["retention.ms"] == -1) == (name != DEAD_LETTER)
        assert spec["replicas"] > spec["config"]["min.insync.replicas"] >= 2


def test_k8s_references_resolve() -> None:
    docs = _manifests()
    defined = {(d["kind"], d["metadata"]["name"]) for d in docs if "metadata" in d}
    kafka_clusters = {name for kind, name in defined if kind == "Kafka"}
    for doc in docs:
        if doc["kind"] in ("KafkaTopic", "KafkaNodePool"):
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] in kafka_clusters
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            assert ("Secret", volume["secret"]["secretName"]) in defined
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                kind, ref = ("ConfigMap", "configMapRef") if "configMapRef" in source else ("Secret", "secretRef")
                assert (kind, source[ref]["name"]) in defined
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"])
                    assert ref["key"] in secret["stringData"]
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )


def _known_settings() -> set[str]:
    """Every environment variable a service reads (the pydantic-settings classes and the trustee key)."""
    from services.collateral.app import CollateralSettings
    from services.collateral.trustee import KEY_ENV, KEY_FILE_ENV
    from services.runtime.settings import Settings
    from services.settlement.wallet import SettlementChainSettings

    known = {"KAFKA_BOOTSTRAP", "DATABASE_URL", KEY_ENV, KEY_FILE_ENV}
    for cls in (Settings, CollateralSettings, SettlementChainSettings):
        prefix = cls.model_config.get("env_prefix", "")
        known |= {f"{prefix}{name}".upper() for name in cls.model_fields}
    return known


def test_deploy_settings_are_ones_the_services_read() -> None:
    named: dict[str, set[str]] = {}
    config = next(d for d in _manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "sn51-config")
    named["k8s ConfigMap"] = set(config["data"])
    named["k8s Secrets"] = {
        key for d in _manifests() if d["kind"] == "Secret" for key in d.get("stringData", {})
        if key.isupper() and key != "POSTGRES_PASSWORD"
    }
    lines = (DEPLOY / "env.example").read_text().splitlines()
    named["env.example"] = {line.split("=")[0] for line in lines if line and not line.startswith("#")}
    services = _compose()["services"]
    named["compose"] = {key for name in SERVICES for key in services[name]["environment"]}
    known = _known_settings()
    unknown = {where: sorted(keys - known) for where, keys in named.items() if keys - known}
    assert unknown == {}
    assert "SN51_SETTLEMENT_ENDPOINT" in named["k8s ConfigMap"] and "SN51_COLLATERAL_RPC_URL" in named["env.example"]
