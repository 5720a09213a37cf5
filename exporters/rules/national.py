"""What the national Prometheus evaluates on federated series and on the cutover-progress
exporter (`national.yml`)."""

from __future__ import annotations

from exporters.rules.conventions import Alert, Record


def national_records() -> list[Record]:
    return [
        Record(
            ":govops_provinces_all_up:count",
            "count(min by (province) (province_system:govops_front_up:max) == 1)",
        ),
        Record(
            "check:govops_readiness_provinces_done:sum",
            "sum by (check) (govops_readiness_check_done)",
        ),
        Record(
            "province:govops_readiness_checks_done:sum",
            "sum by (province) (govops_readiness_check_done)",
        ),
    ]


def national_alerts() -> list[Alert]:
    return [
        Alert(
            "GovopsProvinceBehindCutoverDeadline",
            "-govops_cutover_deadline_seconds_left > 0",
            "1m",
            "critical",
            "{{ $labels.province }} missed the deadline of cutover step {{ $labels.step }} "
            "by {{ $value | humanizeDuration }}.",
            "The step is not done and its deadline has passed. Deadlines do not move: the "
            "steering committee expects a report from the province. See the runbook's progress "
            "(govops cutover status) for the step's owner and the last error.",
        ),
        Alert(
            "GovopsCutoverDeadlineAtRisk",
            "govops_cutover_deadline_seconds_left >= 0\nand\ngovops_cutover_step_at_risk == 1",
            "5m",
            "warning",
            "{{ $labels.province }} may miss the deadline of cutover step {{ $labels.step }}: "
            "{{ $value | humanizeDuration }} left, less than the work ahead needs.",
            "Early warning: the step and the undone steps before it are expected to take longer "
            "than the time left before its deadline. Start it now or escalate to its owner.",
        ),
        Alert(
            "GovopsCutoverStepFailed",
            'govops_cutover_step_status{status=~"failed|rollback_failed"} == 1',
            "0m",
            "critical",
            "Cutover step {{ $labels.step }} failed in {{ $labels.province }} "
            "({{ $labels.status }}).",
            "The runbook engine gave up on the step after its retries (or its rollback failed). "
            "The province waits for an operator; read the step's message with "
            "govops cutover status.",
        ),
        Alert(
            "GovopsCutoverStepUncertain",
            'govops_cutover_step_status{status="uncertain"} == 1',
            "0m",
            "critical",
            "Cutover step {{ $labels.step }} in {{ $labels.province }} is uncertain: it waits "
            "for an operator's decision.",
            "The engine was stopped while the step's action ran and cannot tell whether it took "
            "effect (its verify cannot say, and the step is not idempotent). Nothing more runs "
            "in the province until someone checks the system and decides with govops cutover "
            "decide (done, retry or skip).",
        ),
        Alert(
            "GovopsReadinessEvidenceDisagrees",
            # Only checks with evidence somewhere (a check without an evidence query, or a
            # prober not yet scraped anywhere, has nothing to disagree with).
            "(\n  (govops_readiness_check_done == 1)\n"
            "  unless on (province, check) (province_check:govops_readiness_evidence:max > 0)\n"
            "  or\n  (govops_readiness_check_done == 0)\n"
            "  and on (province, check) (province_check:govops_readiness_evidence:max > 0)\n)\n"
            "and on (check) count by (check) (province_check:govops_readiness_evidence:max)",
            "30m",
            "warning",
            "{{ $labels.province }}: readiness check {{ $labels.check }} as the runbook's steps "
            "reported it ({{ $value }}) is not what Prometheus and the prober observe.",
            "A step said the check was done but the prober has not seen it work in the last "
            "6 hours (value 1), or the prober sees it work while no step reported it (value 0). "
            "Do not count the province in the dispatch's figure until they agree: "
            "govops cutover report RUN lists every disagreement per province.",
        ),
        Alert(
            "GovopsCutoverExporterDown",
            'up{job="cutover"} == 0 or govops_cutover_up == 0',
            "5m",
            "warning",
            "The cutover-progress exporter cannot read the runbook state store.",
            "Cutover deadline alerts cannot fire while this lasts. Check the exporter's log and "
            "the state store (SQLite file or PostgreSQL) it reads.",
        ),
    ]
