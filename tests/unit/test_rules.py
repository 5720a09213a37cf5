"""Prometheus rules: generated, valid (promtool check), unit-tested (promtool test), documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exporters.rules import generate
from exporters.rules.backups import backup_alerts
from tests.integration import monitoring_stack as stack

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "exporters" / "rules"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: apt-get install prometheus (scripts/install-system-deps.sh)"
        )
    return path


def test_committed_rules_are_the_generated_ones() -> None:
    diffs = generate.drift()
    assert not diffs, "rules drifted; run `govops monitoring rules`:\n" + "".join(diffs)


def test_promtool_checks_every_rule_file() -> None:
    files = [str(p) for p in generate.rule_files()]
    result = subprocess.run([promtool(), "check", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (RULES / "tests").glob("*.yml"))
    assert len(tests) >= 3
    result = subprocess.run([promtool(), "test", "rules", *tests], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _alerts() -> list[dict[str, object]]:
    rules = []
    for text in generate.files().values():
        for group in yaml.safe_load(text)["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_every_alert_has_a_documented_runbook_and_a_summary() -> None:
    docs = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    anchors = {h.strip().lower() for h in re.findall(r"^## (\w+)$", docs, flags=re.M)}
    for rule in _alerts():
        annotations = rule["annotations"]
        labels = rule["labels"]
        assert isinstance(annotations, dict) and isinstance(labels, dict)
        url = annotations["runbook_url"]
        assert url.startswith(generate.RUNBOOK_BASE + "#"), url
        assert url.split("#", 1)[1] in anchors, f"docs/alerts.md has no section for {url}"
        assert labels["severity"] in ("critical", "warning")
        summary = annotations["summary"]
        assert 20 < len(summary) < 200 and summary.endswith("."), summary
        assert annotations["description"]
    names = {n.lower() for n in generate.alert_names()}
    assert names == anchors, f"sections without alerts: {anchors - names}"


def test_the_burn_rate_alerts_come_from_the_table() -> None:
    burns = [r for r in _alerts() if r["alert"] == "GovopsErrorBudgetBurn"]
    assert len(burns) == len(generate.SLOS) * len(generate.BURN_WINDOWS)
    pages = {
        (r["labels"]["long_window"], r["labels"]["short_window"])  # type: ignore[index]
        for r in burns
        if r["labels"]["severity"] == "critical"
    }  # type: ignore[index]
    assert pages == {("1h", "5m"), ("6h", "30m")}


def _alertmanager_config(tmp_path: Path) -> Path:
    """roles/alertmanager's configuration, rendered from its defaults with the lab's sink."""
    variables = stack.role_defaults("alertmanager") | {"alertmanager_sink_enabled": True}
    path = tmp_path / "alertmanager.yml"
    path.write_text(stack.render_role_template("alertmanager", "alertmanager.yml.j2", variables))
    return path


def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool not found: apt-get install prometheus-alertmanager")
    return path


def test_critical_pages_and_the_rest_opens_tickets(tmp_path: Path) -> None:
    config = _alertmanager_config(tmp_path)
    check = subprocess.run([amtool(), "check-config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for severity, receiver in (("critical", "oncall-pager"), ("warning", "tickets")):
        routed = subprocess.run(
            [amtool(), "config", "routes", "test", f"--config.file={config}",
             f"severity={severity}", "alertname=GovopsSystemDown", "province=hue"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr
    data = yaml.safe_load(config.read_text())
    # Every receiver also delivers to the lab's alert sink, under its own name.
    for r in data["receivers"]:
        urls = [w["url"] for w in r["webhook_configs"]]
        assert f"http://127.0.0.1:9097/{r['name']}" in urls, r


def test_a_system_down_inhibits_what_it_causes_in_its_province() -> None:
    """Every alert a system down causes (the zone rules' transaction, burn and exporter alerts)
    is the target of an inhibition by GovopsSystemDown; none of those is itself a source."""
    rules = stack.role_defaults("alertmanager")["alertmanager_inhibit_rules"]
    by_down = [r for r in rules if r.get("source") == {"alertname": "GovopsSystemDown"}]
    inhibited = {name for r in by_down for name in r["target_regex"]["alertname"].split("|")}
    caused = {
        "GovopsSystemReplicaDown", "GovopsExporterDown", "GovopsTransactionFailing",
        "GovopsErrorBudgetBurn", "GovopsSSOFailing", "GovopsDossierSubmissionFailing",
        "GovopsDossierSyncLagging", "GovopsCommunesNotTested",
    }  # fmt: skip
    assert caused <= inhibited, caused - inhibited
    assert caused <= set(generate.alert_names())
    province_wide = [r for r in by_down if r["equal"] == ["province"]]
    assert province_wide and "GovopsSSOFailing" in province_wide[0]["target_regex"]["alertname"]


def test_a_backup_host_down_is_one_page_for_its_zone() -> None:
    """GovopsBackupHostDown mutes every backup, WAL archive and drill alert of its zone (they
    follow from it), but not the standby's: those are each province's own fault. Every alert
    an inhibition names exists in the rules."""
    rules = stack.role_defaults("alertmanager")["alertmanager_inhibit_rules"]
    names = set(generate.alert_names())
    for r in rules:
        targets = set(r["target_regex"]["alertname"].split("|"))
        assert targets <= names, targets - names
        assert r["source"]["alertname"] in names, r
    by_backup_host = [
        r
        for r in rules
        if r["source"] == {"alertname": "GovopsBackupHostDown"} and r["equal"] == ["zone"]
    ]
    assert len(by_backup_host) == 1
    muted = set(by_backup_host[0]["target_regex"]["alertname"].split("|"))
    backup = {a.name for a in backup_alerts()} - {"GovopsBackupHostDown"}
    assert muted == backup - {"GovopsStandbyNotStreaming", "GovopsStandbyLagHigh"}


def test_the_backup_and_standby_alerts_keep_their_province() -> None:
    """Grouping is by province: every backup/standby alert but the backup host's own (a zone's)
    keeps `province` in its aggregation, and `zone` and `host` for the inhibitions."""
    zone_wide = {"GovopsBackupMetricsStale", "GovopsBackupHostDown"}
    for a in backup_alerts():
        if a.name not in zone_wide:
            assert "by (province, zone, host)" in a.expr, a.name


def _postgres_exporter_metrics(inherit: str) -> set[str]:
    """The metric names roles/postgres_exporter's custom queries produce: <namespace>_<column>
    for every column that is not a label."""
    variables = {"postgres_exporter_inherit_database": inherit}
    text = stack.render_role_template("postgres_exporter", "queries.yaml.j2", variables)
    names = set()
    for namespace, query in yaml.safe_load(text).items():
        for metric in query["metrics"]:
            ((column, spec),) = metric.items()
            if spec["usage"] != "LABEL":
                names.add(f"{namespace}_{column}")
    return names


def test_the_database_alerts_read_what_postgres_exporter_writes() -> None:
    """Every govops_pg_* series the rules read is one of the role's queries (always on, with or
    without the inherit database), with the contract's names; the inherit ones only with it."""
    always = _postgres_exporter_metrics("")
    assert always == {
        "govops_pg_in_recovery",
        "govops_pg_archiver_archived_count",
        "govops_pg_archiver_failed_count",
        "govops_pg_archiver_last_archived_age_seconds",
        "govops_pg_archiver_ready_segments",
        "govops_pg_replication_lag_seconds",
        "govops_pg_replication_standbys_streaming",
        "govops_pg_replication_lag_bytes",
    }
    assert _postgres_exporter_metrics("procedures") - always == {
        "govops_inherit_records",
        "govops_inherit_verification_ok",
        "govops_inherit_verification_mismatches",
    }
    read = set(re.findall(r"(?<!:)\bgovops_pg_\w+\b(?!:)", "".join(generate.files().values())))
    assert read and read <= always, read - always
