"""docker-compose.yml is valid (Debian's docker-compose validates it without an engine)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_env(tmp_path):
    """An empty env file, so a developer's .env cannot change the result."""
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def test_compose_file_is_valid_with_every_service_healthchecked(empty_env):
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is missing: install Debian's docker-compose package (.ci/run does)")
    env = {**os.environ, "SECRET_KEY": "compose-config-check-only"}
    result = subprocess.run([compose, "--env-file", str(empty_env), "-f", "docker-compose.yml", "config"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import yaml

    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"web", "consumer", "redis", "dynamodb", "postgres", "init"}
    for name in ("web", "consumer", "redis", "dynamodb", "postgres"):
        assert "healthcheck" in services[name], name
    assert services["web"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["consumer"]["command"].startswith("python manage.py consume_scores")


def test_compose_refuses_to_start_without_a_secret_key(empty_env):
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is missing: install Debian's docker-compose package (.ci/run does)")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run([compose, "--env-file", str(empty_env), "-f", "docker-compose.yml", "config"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
