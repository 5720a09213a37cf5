"""What a zone's Prometheus evaluates on what it scrapes (`zone.yml`): blackbox, node, the
exporters and the domain prober."""

from __future__ import annotations

from exporters.rules.conventions import (
    AFTER_SYSTEM_DOWN,
    CERT_CRITICAL_DAYS,
    CERT_WARNING_DAYS,
    FRONTS,
    SYNC_LAG_WARNING_SECONDS,
    SYSTEM_DOWN_KEEP_FIRING,
    Alert,
    Record,
)
from govops.registry import catalog

# The prober's cutover modules (old portals closed, go-live) fail by design until their step:
# the readiness evidence reads them; they are not transactions that page.
CUTOVER_CHECKS = "legacy_portal_redirect|portal_dossier_routed|official_operation"

# The readiness evidence (readiness.yml `evidence:`) as the zone records it for the national
# Prometheus: "observed during the last EVIDENCE_WINDOW" (the report uses the run's own span).
EVIDENCE_WINDOW = "6h"
EVIDENCE_START = "(time() - 21600)"
# Inherited records quarantined (an old ward with no single new commune). The published map
# splits 296 of 10,039 old wards across several communes, and in some old provinces many: the
# lab's Bình Dương source quarantines ~14% for that alone, work for the data team (`inherit
# status` lists them), not a fault. More than a quarter means a wrong ward map or source.
QUARANTINE_RATIO = 0.25
QUARANTINE_PCT = 25


def evidence_records() -> list[Record]:
    return [
        Record(
            "province_check:govops_readiness_evidence:max",
            check.evidence.replace("$window", EVIDENCE_WINDOW).replace("$start", EVIDENCE_START),
            {"check": check_id},
        )
        for check_id, check in catalog().checks.items()
        if check.evidence
    ]


def zone_records() -> list[Record]:
    period = "max by (province) (govops_commune_test_period_seconds)"
    return [
        Record(
            "province_system:govops_front_up:max",
            f"max by (province, system) (probe_success{{{FRONTS}}})",
        ),
        Record(
            "province_system_check:govops_probe_success:max",
            "max by (province, system, check) (govops_probe_success)",
        ),
        Record(
            "province:govops_dossier_sync_lag_seconds:max",
            "max by (province) (govops_dossier_sync_lag_seconds)",
        ),
        Record(
            "province:govops_communes:count",
            "count by (province) (max by (province, commune) "
            "(govops_commune_last_success_timestamp_seconds))",
        ),
        Record(
            "province:govops_communes_tested:count",
            "count by (province) (\n"
            "  time()\n"
            "  - max by (province, commune) (govops_commune_last_success_timestamp_seconds)\n"
            f"  <= on (province) group_left () {period}\n)",
        ),
        Record(
            "province_system:govops_cert_expiry_seconds:min",
            'min by (province, system) (probe_ssl_earliest_cert_expiry{job="blackbox_https"})'
            " - time()",
        ),
        *evidence_records(),
    ]


def zone_alerts() -> list[Alert]:
    down = f"max by (province, system) (probe_success{{{FRONTS}}})"
    return [
        Alert(
            "GovopsSystemDown",
            f"{down} == 0",
            "2m",
            "critical",
            "{{ $labels.system }} of {{ $labels.province }} is down: its front door does not "
            "answer (every replica failed the HTTPS readiness probe).",
            "blackbox_exporter has failed every replica of this system for 2 minutes; "
            "citizens and officials of the province cannot use it. Start with the nginx and "
            "application services on the hosts, then the database.",
            keep_firing_for=SYSTEM_DOWN_KEEP_FIRING,
        ),
        Alert(
            "GovopsSystemReplicaDown",
            f"probe_success{{{FRONTS}}} == 0\nunless on (province, system)\n({down} == 0)",
            "5m",
            "warning",
            "{{ $labels.host }} ({{ $labels.system }}, {{ $labels.province }}) fails its "
            "readiness probe; the other replicas still serve.",
            "One replica is out of service; capacity is reduced, users are not yet affected.",
        ),
        Alert(
            "GovopsNationalCounterpartDown",
            'probe_success{job="blackbox_https", tier="national"} == 0',
            "2m",
            "critical",
            "National counterpart {{ $labels.system }} does not answer: every province's "
            "exchanges with it fail.",
            "The national counterpart's readiness probe has failed for 2 minutes. Provinces "
            "will queue or fail sync, sign-in, payment or document exchange depending on which "
            "one it is. Call the national operator.",
        ),
        Alert(
            "GovopsSSOFailing",
            'max by (province) (govops_probe_success{check="sso_login"}) == 0'
            f"\nunless on (province)\n({AFTER_SYSTEM_DOWN})",
            "5m",
            "critical",
            "Citizens of {{ $labels.province }} cannot sign in from the national portal "
            "(VNeID single sign-on into the procedures system fails).",
            "The prober's sign-in (portal authorize → procedures callback → token → userinfo) "
            "has failed for 5 minutes. Check the procedures system's SSO client settings and "
            "the national portal; /probe?target={{ $labels.province }}&module=sso_login&debug=true "
            "on the prober shows the failing hop.",
        ),
        Alert(
            "GovopsDossierSubmissionFailing",
            'max by (province) (govops_probe_success{check="dossier_submit"}) == 0'
            f"\nunless on (province)\n({AFTER_SYSTEM_DOWN})",
            "10m",
            "critical",
            "Dossiers cannot be submitted in some communes of {{ $labels.province }}.",
            "Test dossiers in this province's communes were refused or failed for 10 minutes; "
            "govops_dossier_communes_failed says how many of the last batch. The prober's debug "
            "output names the first failing commune and the reason.",
        ),
        Alert(
            "GovopsTransactionFailing",
            "max by (province, system, check) (govops_probe_success"
            f'{{check!~"sso_login|dossier_submit|front_ready|{CUTOVER_CHECKS}"}}) == 0'
            f"\nunless on (province)\n({AFTER_SYSTEM_DOWN})",
            "10m",
            "warning",
            "{{ $labels.province }}: the {{ $labels.check }} transaction of {{ $labels.system }} "
            "fails.",
            "The synthetic transaction has failed for 10 minutes while the front door may still "
            "answer: the system is up but a flow (payment, notification, Axis, report, meeting, "
            "LGSP relay or sync status) is broken.",
        ),
        Alert(
            "GovopsDossierSyncLagging",
            f"max by (province) (govops_dossier_sync_lag_seconds) > {SYNC_LAG_WARNING_SECONDS}"
            f"\nunless on (province)\n({AFTER_SYSTEM_DOWN})",
            "10m",
            "warning",
            "Dossier records of {{ $labels.province }} reach the national portal "
            "{{ $value | humanizeDuration }} late.",
            "The oldest dossier record not yet synced to the National Public Service Portal is "
            f"older than {SYNC_LAG_WARNING_SECONDS // 60} minutes. Citizens looking up their "
            "dossier on the national portal see stale status. Check the sync job's last error.",
        ),
        Alert(
            "GovopsCommunesNotTested",
            "count by (province) (\n"
            "  time() - govops_commune_last_success_timestamp_seconds\n"
            "  > on (province) group_left ()\n"
            "  max by (province) (govops_commune_test_period_seconds)\n) > 0"
            f"\nunless on (province)\n({AFTER_SYSTEM_DOWN})",
            "30m",
            "warning",
            "{{ $value }} communes of {{ $labels.province }} have had no successful test "
            "dossier within the test period.",
            "The dispatch requires dossier submission tested in every commune. These communes "
            "were attempted in their turn but failed (or the prober was down). A freshly "
            "installed prober needs one full period to cover every commune.",
        ),
        Alert(
            "GovopsCertificateExpiringSoon",
            f"{_cert_left()} < {CERT_WARNING_DAYS} * 86400\nand\n"
            f"{_cert_left()} >= {CERT_CRITICAL_DAYS} * 86400",
            "1h",
            "warning",
            "The TLS certificate of {{ $labels.host }} expires in {{ $value | humanizeDuration }}.",
            f"Renew it within {CERT_WARNING_DAYS - CERT_CRITICAL_DAYS} days (nginx_tls role); "
            "once it expires, browsers refuse the site.",
        ),
        Alert(
            "GovopsCertificateExpiring",
            f"{_cert_left()} < {CERT_CRITICAL_DAYS} * 86400",
            "10m",
            "critical",
            "The TLS certificate of {{ $labels.host }} expires in "
            "{{ $value | humanizeDuration }}: renew it now.",
            "After expiry citizens' browsers and the national counterparts refuse the "
            "connection. Renew and reload nginx (nginx_tls role).",
        ),
        Alert(
            "GovopsProberFailing",
            'up{job="domain_prober"} == 0 or govops_up == 0',
            "5m",
            "warning",
            "The domain prober cannot probe {{ $labels.province }}: synthetic transactions "
            "are blind there.",
            "Either Prometheus cannot scrape the prober or the prober failed itself (govops_up "
            "0). Transaction alerts for this province cannot fire meanwhile. Check the "
            "govops-prober service on the monitoring host.",
        ),
        Alert(
            "GovopsHostDown",
            'up{job="node"} == 0',
            "5m",
            "warning",
            "Host {{ $labels.host }} does not answer node_exporter scrapes.",
            "The host may be down or its network cut; the system alerts say whether users are "
            "affected.",
        ),
        Alert(
            "GovopsExporterDown",
            'up{job=~"nginx|postgres"} == 0',
            "10m",
            "warning",
            "The {{ $labels.job }} exporter on {{ $labels.host }} cannot be scraped.",
            "Metrics of that service are missing; dashboards show gaps. The service itself may "
            "be fine (see GovopsSystemDown).",
        ),
        Alert(
            "GovopsLegacyVerificationFailed",
            "govops_inherit_verification_ok == 0",
            "5m",
            "critical",
            "Records inherited from old province {{ $labels.old_province }} into "
            "{{ $labels.province }} ({{ $labels.system }}) fail verification.",
            "`govops inherit verify` found counts or checksums that differ between the old "
            "system and the new one (govops_inherit_verification_mismatches says how many). "
            "`govops inherit status --province {{ $labels.province }}` names the failing "
            "source and kind; run `govops inherit run` again (it resumes), then verify.",
        ),
        Alert(
            "GovopsLegacyQuarantineHigh",
            'govops_inherit_records{state="quarantined"}\n/ on (province, old_province, system)\n'
            'govops_inherit_records{state="source"}\n'
            f"> {QUARANTINE_RATIO}",
            "15m",
            "warning",
            f"More than {QUARANTINE_PCT}% of the records of old province "
            "{{ $labels.old_province }} ({{ $labels.system }}) are quarantined in "
            "{{ $labels.province }}.",
            "Records whose old ward has no commune in the published map are kept in "
            "inherit_quarantine, not moved. Old systems hold a few typos; this many means a "
            "wrong ward map or a wrong source. Look at the quarantine's reasons before go-live.",
        ),
    ]


def _cert_left() -> str:
    return (
        "min by (province, system, host) "
        '(probe_ssl_earliest_cert_expiry{job="blackbox_https"}) - time()'
    )
