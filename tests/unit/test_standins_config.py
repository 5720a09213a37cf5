"""Stand-in config: validated once; every error names the source and the key."""

from __future__ import annotations

from typing import Any

import pytest

from govops.lab.standins.config import ConfigError, parse_config

SECRETS = {"/s/sso": "sso-secret-value", "/s/faults": "fault-token-value"}


def read_secret(path: str) -> str:
    if path not in SECRETS:
        raise FileNotFoundError(2, "No such file or directory")
    return SECRETS[path]


def procedures(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "procedures",
        "listen": "127.0.0.1:8081",
        "province": "hue",
        "communes": [{"code": "19900", "name": "Phường Thuận An", "type": "phường"}],
        "database": {
            "dsn": "postgresql://standin@hue-db/hue_procedures",
            "sslmode": "verify-full",
            "sslrootcert": "/etc/govops/ca.pem",
        },
        "counterparts": {"portal": "https://national-portal"},
        "sso": {"client_id": "hue-procedures", "client_secret_file": "/s/sso"},
        "fault_token_file": "/s/faults",
    }
    data.update(overrides)
    return data


def parse(data: Any) -> Any:
    return parse_config(data, "config.json", read_secret)


def test_a_full_procedures_config_parses_and_hides_secrets() -> None:
    config = parse(procedures())
    assert (config.host, config.port, config.province) == ("127.0.0.1", 8081, "hue")
    assert config.commune_codes == {"19900"}
    assert config.sso is not None and config.sso.client_secret == "sso-secret-value"
    assert config.fault_token == "fault-token-value"
    assert "sso-secret-value" not in repr(config) and "fault-token-value" not in repr(config)


def test_a_national_kind_needs_only_a_state_path() -> None:
    config = parse(
        {
            "kind": "national-ndxp",
            "listen": "127.0.0.1:8090",
            "state_path": "/var/lib/govops-standin/state.sqlite3",
        }
    )
    assert config.province is None and config.database is None


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ([], "(root)"),
        (procedures(kind="crm"), "kind"),
        (procedures(listen="8081"), "listen"),
        (procedures(province="Huế"), "province"),
        (procedures(province=None), "province"),
        (procedures(communes=[{"code": "1990"}]), "communes[0].code"),
        (procedures(communes=[]), "communes"),
        (procedures(database=None), "database"),
        (procedures(database={"dsn": "x", "sslmode": "maybe"}), "database.sslmode"),
        (procedures(counterparts={}), "counterparts.portal"),
        (procedures(counterparts={"portal": "ftp://x"}), "counterparts.portal"),
        (procedures(sso=None), "sso"),
        (
            procedures(sso={"client_id": "x", "client_secret_file": "/s/none"}),
            "sso.client_secret_file",
        ),
        (procedures(fault_token_file="/s/none"), "fault_token_file"),
        (procedures(sync_interval_seconds=-1), "sync_interval_seconds"),
        (procedures(sync_interval_seconds=True), "sync_interval_seconds"),
        (procedures(kind="documents", agencies=[{"code": "H57"}]), "agencies[0].code"),
        (
            {
                "kind": "national-portal",
                "listen": "127.0.0.1:1",
                "state_path": "/x",
                "sso_clients": [{"client_id": "c", "client_secret_file": "/s/sso"}],
            },
            "sso_clients[0].redirect_uris",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(data: Any, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(data)
    assert str(err.value).startswith(f"config.json: {key}: ")
