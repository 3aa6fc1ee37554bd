"""The shipped Prometheus alert rules and Grafana dashboard: the rules pass ``promtool check
rules``, and every metric either of them queries is one the service exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from starlette.testclient import TestClient

from splitlab.service.app import create_app
from splitlab.service.settings import Settings
from tests.conftest import ROOT, unavailable

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "splitlab.json"
NAME = re.compile(r"\bsplitlab_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def exposed_names(tmp_path: Path) -> set[str]:
    """Every series name the service's /metrics can carry (from its collectors' families)."""
    with TestClient(create_app(Settings(data_dir=tmp_path, admin_token="deploy-token"))) as app:
        registry = app.app.state.metrics.registry  # type: ignore[attr-defined]
        names = set()
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        return names


def queried_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [target["expr"] for panel in dashboard["panels"]
                    for target in panel["targets"]]
    return {name for expr in expressions for name in NAME.findall(expr)}


def test_every_metric_the_rules_and_dashboard_query_exists(tmp_path: Path) -> None:
    queried = queried_names()
    assert {"splitlab_experiment_units", "splitlab_experiment_srm_p_value",
            "splitlab_experiment_health", "splitlab_intake_experiment_events_total"} <= queried
    missing = queried - exposed_names(tmp_path)
    assert not missing, f"queried but never exposed: {sorted(missing)}"


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    checked = subprocess.run([str(promtool), "check", "rules", str(RULES)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
