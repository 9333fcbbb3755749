"""deploy/prometheus/alerts.yml: promtool accepts it, its unit tests
(alerts_test.yml) pass, those tests catch a wrong threshold, and every alert
names metrics the code exports and a runbook section that exists.

promtool comes from Debian's prometheus package, which `make provision`
installs; without it these tests fail, they never skip."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scoring import metrics

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULES_TEST = RULES_DIR / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "deploy.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        pytest.fail("promtool is missing (it ships in Debian's prometheus package): run `make provision`, "
                    "which installs it, then run the tests again", pytrace=False)
    return path


def _promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules(promtool):
    result = _promtool(promtool, "check", "rules", str(RULES), cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_alerts_fire_when_they_should_and_not_otherwise(promtool):
    result = _promtool(promtool, "test", "rules", str(RULES_TEST), cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_broken_rule_file(promtool, tmp_path):
    # What the first test relies on: a rule file promtool can't parse fails it.
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text().replace("> 43200", "> > 43200", 1))
    result = _promtool(promtool, "check", "rules", str(broken), cwd=tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


@pytest.mark.parametrize("change", [
    ("gamescores_pipeline_lag_seconds > 300", "gamescores_pipeline_lag_seconds > 200"),  # 4 min lag would fire
    ("for: 2m", "for: 0m"),  # one slow batch would fire
    ("> 43200", "> 39000"),  # 11 h would fire
    ("> 43200", "> 50000"),  # 13 h would not
    ("[8m]", "[20m]"),  # an applied submission would page
    ("absent(gamescores_pipeline_last_batch_timestamp_seconds)", "vector(0) < 0"),  # no consumer: silence
], ids=["lag threshold", "lag for", "age 11h fires", "age 13h silent", "stalled window", "no absent"])
def test_the_unit_tests_catch_a_wrong_rule(promtool, tmp_path, change):
    old, new = change
    text = RULES.read_text()
    assert old in text
    (tmp_path / "alerts.yml").write_text(text.replace(old, new, 1))
    shutil.copy(RULES_TEST, tmp_path)
    result = _promtool(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0, f"alerts_test.yml still passes with {new!r} for {old!r}"


def test_alerts_use_metrics_and_labels_the_code_exports():
    exported = {}
    for collector in vars(metrics).values():
        if hasattr(collector, "describe") and hasattr(collector, "_labelnames"):
            for family in collector.describe():
                suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
                for suffix in suffixes:
                    exported[family.name + suffix] = set(collector._labelnames)
    for rule in _alerts():
        used = re.findall(r"\b(gamescores_\w+)(?:\{([^}]*)\})?", rule["expr"])
        assert used, rule["alert"]
        for name, matchers in used:
            assert name in exported, f"{rule['alert']}: {name} is not in scoring/metrics.py"
            labels = set(re.findall(r"(\w+)\s*=", matchers)) | set(re.findall(r"by \((\w+)\)", rule["expr"]))
            assert labels <= exported[name] | {"job", "instance"}, (rule["alert"], name, labels)


def test_every_alert_has_severity_for_annotations_and_a_runbook_section():
    headings = set(re.findall(r"^### (\w+)$", RUNBOOK.read_text(), re.MULTILINE))
    alerts = _alerts()
    assert len(alerts) == 3
    for rule in alerts:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["for"], rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"docs/deploy.md#{rule['alert'].lower()}"
        assert rule["alert"] in headings, f"docs/deploy.md has no '### {rule['alert']}' section"
