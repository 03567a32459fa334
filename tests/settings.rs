//! Settings layering: built-in defaults < the config file < SWITCHBOARD_* environment.

use std::time::Duration;

use switchboard::settings::{DatabaseUrl, ReservationTimeout, Settings, TenantRuntime};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_are_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.toml");
    std::fs::write(&file, "").unwrap();
    let s = Settings::from_sources(Some(&file), &[]).unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(s.database_url, DatabaseUrl::Sqlite("data/switchboard.db".into()));
    assert_eq!(
        (s.sla_urgent, s.sla_standard, s.sla_batch),
        (Duration::from_secs(300), Duration::from_secs(1800), Duration::from_secs(86400))
    );
    assert_eq!(s.reservation_timeout, ReservationTimeout::ShareOfSla(0.2));
    assert_eq!(s.webhook_retry_schedule, [60, 300, 1800, 7200, 86400].map(Duration::from_secs).to_vec());
    assert!(!s.webhook_allow_private);
    assert!(s.master_key.is_none() && s.outbound_allow.is_none() && s.bootstrap_admin.is_none());
    assert_eq!(s.tenant_runtime, TenantRuntime::Embedded);
    assert_eq!(s.jwt_ttl, Duration::from_secs(86400));
    assert_eq!(s.log, "info");
}

#[test]
fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(
        &file,
        r#"
bind = "127.0.0.1:9999"
sla_urgent = "2m"
sla_batch = "1h"
webhook_retry_schedule = ["1s", "2s"]
webhook_allow_private = true
outbound_allow = "127.0.0.0/8"
database_url = "postgres://sb:pw@127.0.0.1:5432/sb"
"#,
    )
    .unwrap();
    let s =
        Settings::from_sources(Some(&file), &env(&[("SWITCHBOARD_SLA_URGENT", "3m"), ("UNRELATED", "x")]))
            .unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:9999");
    assert_eq!(s.sla_urgent, Duration::from_secs(180), "environment wins over the file");
    assert_eq!(s.sla_batch, Duration::from_secs(3600), "file wins over the default");
    assert_eq!(s.sla_standard, Duration::from_secs(1800), "default where neither says");
    assert_eq!(s.webhook_retry_schedule, vec![Duration::from_secs(1), Duration::from_secs(2)]);
    assert!(s.webhook_allow_private);
    assert_eq!(s.outbound_allow.unwrap().len(), 1);
    assert!(matches!(s.database_url, DatabaseUrl::Postgres(_)));
}

#[test]
fn errors_name_the_setting_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, "jwt_ttl = \"forever\"\n").unwrap();
    let err = Settings::from_sources(Some(&file), &[]).unwrap_err();
    assert_eq!(err.setting, "SWITCHBOARD_JWT_TTL");
    assert!(err.to_string().contains("switchboard.toml"), "{err}");

    let err = Settings::from_sources(Some(&file), &env(&[("SWITCHBOARD_JWT_TTL", "0s")])).unwrap_err();
    assert!(
        err.to_string().contains("from environment") && err.to_string().contains("longer than zero"),
        "{err}"
    );
}
