//! Settings: built-in defaults < `switchboard.toml` < `SWITCHBOARD_*` environment.
//! Every value is parsed into a domain type here, so a bad one stops start-up
//! with one line that names the setting, where it came from, and what is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use ipnet::IpNet;

/// One setting: its name in `switchboard.toml`, its default, and what it means.
/// The environment variable is `SWITCHBOARD_` + the upper-cased key.
pub struct SettingSpec {
    pub key: &'static str,
    pub default: Option<&'static str>,
    pub meaning: &'static str,
}

/// Every setting the server reads. The README's table is written from this list.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec { key: "bind", default: Some("127.0.0.1:8080"), meaning: "listen address" },
    SettingSpec {
        key: "database_url",
        default: Some("sqlite://data/switchboard.db"),
        meaning: "`sqlite://PATH` or `postgres://...`",
    },
    SettingSpec { key: "mail", default: Some("log"), meaning: "`log`, `file:DIR` or `smtp://host:port`" },
    SettingSpec {
        key: "bootstrap_admin",
        default: None,
        meaning: "email of a super-admin created at start if missing",
    },
    SettingSpec { key: "sla_urgent", default: Some("5m"), meaning: "SLA of `urgent` escalations" },
    SettingSpec { key: "sla_standard", default: Some("30m"), meaning: "SLA of `standard` escalations" },
    SettingSpec { key: "sla_batch", default: Some("24h"), meaning: "SLA of `batch` escalations" },
    SettingSpec {
        key: "reservation_timeout",
        default: Some("20%"),
        meaning: "time an expert has to accept a routed case (share of the SLA, or a duration)",
    },
    SettingSpec {
        key: "webhook_retry_schedule",
        default: Some("1m,5m,30m,2h,24h"),
        meaning: "waits between webhook attempts",
    },
    SettingSpec {
        key: "webhook_allow_private",
        default: Some("false"),
        meaning: "let webhooks reach private and loopback addresses",
    },
    SettingSpec {
        key: "master_key",
        default: None,
        meaning: "base64 of 32 bytes; else read from or generated into `DATA_DIR/master.key`",
    },
    SettingSpec { key: "outbound_allow", default: None, meaning: "CIDRs that outbound calls are limited to" },
    SettingSpec {
        key: "tenant_runtime",
        default: Some("embedded"),
        meaning: "runtime for newly deployed tenants: `embedded` or `process`",
    },
    SettingSpec {
        key: "runtime_bin",
        default: None,
        meaning: "the executable the `process` runtime starts as `BIN runtime`; this binary when unset",
    },
    SettingSpec {
        key: "runtime_start_timeout",
        default: Some("10s"),
        meaning: "how long a `process` runtime child may take to start listening",
    },
    SettingSpec {
        key: "runtime_restart_backoff",
        default: Some("500ms"),
        meaning: "first wait before restarting a crashed runtime child; doubles per crash, at most 30s",
    },
    SettingSpec {
        key: "runtime_max_restarts",
        default: Some("5"),
        meaning: "crashes within `runtime_restart_window` after which the tenant is put in `error`",
    },
    SettingSpec {
        key: "runtime_restart_window",
        default: Some("10m"),
        meaning: "the window over which runtime crashes are counted",
    },
    SettingSpec {
        key: "resource_sample_interval",
        default: Some("60s"),
        meaning: "how often running containers' resource figures are sampled into the database",
    },
    SettingSpec { key: "jwt_ttl", default: Some("24h"), meaning: "lifetime of a JWT" },
    SettingSpec {
        key: "provider_timeout",
        default: Some("30s"),
        meaning: "how long one call to a model provider may take",
    },
    SettingSpec {
        key: "provider_circuit_threshold",
        default: Some("5"),
        meaning: "provider failures in a row that open a tenant's circuit",
    },
    SettingSpec {
        key: "provider_circuit_cooldown",
        default: Some("30s"),
        meaning: "how long an open provider circuit refuses calls before one probe",
    },
    SettingSpec { key: "log", default: Some("info"), meaning: "tracing filter" },
    SettingSpec { key: "log_format", default: Some("text"), meaning: "`text` or `json` (JSON lines)" },
    SettingSpec {
        key: "data_dir",
        default: Some("data"),
        meaning: "directory for the master key and other local state",
    },
    SettingSpec {
        key: "store_batch_window",
        default: Some("0ms"),
        meaning: "extra time the Store waits to gather writes into one transaction \
                  (at 0, writes gather while the previous commit runs)",
    },
    SettingSpec {
        key: "store_batch_max",
        default: Some("512"),
        meaning: "most writes in one Store transaction",
    },
    SettingSpec { key: "db_pool_size", default: Some("16"), meaning: "database connections for reads" },
    SettingSpec {
        key: "signin_limit_per_email",
        default: Some("10/10m"),
        meaning: "sign-in requests (one-time code, login, signup) allowed per email, as COUNT/PERIOD",
    },
    SettingSpec {
        key: "signin_limit_per_client",
        default: Some("120/1m"),
        meaning: "sign-in requests allowed per client address, as COUNT/PERIOD",
    },
    SettingSpec {
        key: "shutdown_timeout",
        default: Some("30s"),
        meaning: "how long a graceful stop waits for in-flight requests",
    },
    SettingSpec {
        key: "client_header_timeout",
        default: Some("5s"),
        meaning:
            "how long a client may take to send a request's head (method, path, headers); then 408 and close",
    },
    SettingSpec {
        key: "client_body_timeout",
        default: Some("30s"),
        meaning: "how long a client may take to send a request's whole body, once its head arrived; then 408",
    },
    SettingSpec {
        key: "keep_alive",
        default: Some("5s"),
        meaning: "how long an idle kept-alive connection stays open",
    },
];

pub const ENV_PREFIX: &str = "SWITCHBOARD_";
pub const DEFAULT_CONFIG_FILE: &str = "switchboard.toml";

/// Where a raw value came from; named in error messages so the operator knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "built-in default"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env => write!(f, "environment"),
        }
    }
}

/// A setting that could not be used. Displayed as the one line start-up prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub setting: String,
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid setting {}: {}", self.setting, self.message)
    }
}

impl std::error::Error for SettingsError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("a sqlite URL needs a file path, e.g. sqlite://data/switchboard.db".into());
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(raw.to_string()))
        } else {
            let scheme = raw.split("://").next().filter(|_| raw.contains("://")).unwrap_or(raw);
            Err(format!("unknown database scheme {scheme:?}: use sqlite://PATH or postgres://..."))
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Display for DatabaseUrl {
    /// Never prints a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseUrl::Postgres(url) => {
                let redacted = match (url.find("://"), url.rfind('@')) {
                    (Some(s), Some(at)) if at > s => {
                        let creds = &url[s + 3..at];
                        let user = creds.split(':').next().unwrap_or("");
                        format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
                    }
                    _ => url.clone(),
                };
                f.write_str(&redacted)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailSetting {
    Log,
    File(PathBuf),
    Smtp { host: String, port: u16 },
}

impl MailSetting {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "log" {
            return Ok(MailSetting::Log);
        }
        if let Some(dir) = raw.strip_prefix("file:") {
            if dir.is_empty() {
                return Err("file: needs a directory, e.g. file:data/mail".into());
            }
            return Ok(MailSetting::File(PathBuf::from(dir)));
        }
        if let Some(rest) = raw.strip_prefix("smtp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| "smtp needs host:port, e.g. smtp://127.0.0.1:25".to_string())?;
            let port: u16 = port.parse().map_err(|_| format!("bad smtp port {port:?}"))?;
            if host.is_empty() {
                return Err("smtp needs a host".into());
            }
            return Ok(MailSetting::Smtp { host: host.to_string(), port });
        }
        Err("expected log, file:DIR or smtp://host:port".into())
    }
}

/// How long an expert has to accept a routed case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReservationTimeout {
    /// A share of the escalation's SLA, in (0, 1].
    ShareOfSla(f64),
    Fixed(Duration),
}

impl ReservationTimeout {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(pct) = raw.strip_suffix('%') {
            let pct: f64 = pct.trim().parse().map_err(|_| format!("bad percentage {raw:?}"))?;
            if !(pct > 0.0 && pct <= 100.0) {
                return Err(format!("percentage must be in (0, 100], got {raw}"));
            }
            return Ok(ReservationTimeout::ShareOfSla(pct / 100.0));
        }
        parse_positive_duration(raw).map(ReservationTimeout::Fixed)
    }

    pub fn for_sla(&self, sla: Duration) -> Duration {
        match *self {
            ReservationTimeout::ShareOfSla(share) => sla.mul_f64(share),
            ReservationTimeout::Fixed(d) => d,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRuntime {
    Embedded,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// 32 bytes that sign JWTs and encrypt secrets at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(pub [u8; 32]);

impl MasterKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| "not valid base64".to_string())?;
        let arr: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("must decode to 32 bytes, got {}", b.len()))?;
        Ok(MasterKey(arr))
    }

    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub mail: MailSetting,
    pub bootstrap_admin: Option<String>,
    pub sla_urgent: Duration,
    pub sla_standard: Duration,
    pub sla_batch: Duration,
    pub reservation_timeout: ReservationTimeout,
    pub webhook_retry_schedule: Vec<Duration>,
    pub webhook_allow_private: bool,
    pub master_key: Option<MasterKey>,
    pub outbound_allow: Option<Vec<IpNet>>,
    pub tenant_runtime: TenantRuntime,
    pub runtime_bin: Option<PathBuf>,
    pub runtime_start_timeout: Duration,
    pub runtime_restart_backoff: Duration,
    pub runtime_max_restarts: u32,
    pub runtime_restart_window: Duration,
    pub resource_sample_interval: Duration,
    pub jwt_ttl: Duration,
    pub provider_timeout: Duration,
    pub provider_circuit_threshold: u32,
    pub provider_circuit_cooldown: Duration,
    pub log: String,
    pub log_format: LogFormat,
    pub data_dir: PathBuf,
    pub store_batch_window: Duration,
    pub store_batch_max: usize,
    pub db_pool_size: u32,
    pub shutdown_timeout: Duration,
    pub client_header_timeout: Duration,
    pub client_body_timeout: Duration,
    pub keep_alive: Duration,
    pub signin_limit_per_email: RateQuota,
    pub signin_limit_per_client: RateQuota,
}

/// A rate: `max` requests per `per`, written `COUNT/PERIOD` (`10/10m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub max: u32,
    pub per: Duration,
}

impl RateQuota {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (max, per) =
            raw.split_once('/').ok_or_else(|| format!("expected COUNT/PERIOD like 10/1m, got {raw:?}"))?;
        let max: u32 = match max.trim().parse() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("expected a positive count before '/', got {max:?}")),
        };
        Ok(RateQuota { max, per: parse_positive_duration(per.trim())? })
    }
}

/// Raw values by key, each with where it came from.
type RawValues = BTreeMap<&'static str, (String, Source)>;

impl Settings {
    /// Loads settings the way the binary does: defaults, then the config file
    /// (`explicit_file`, else `./switchboard.toml` when present), then the process environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::from_sources(explicit_file, &env)
    }

    /// The same layering with an explicit environment, so tests need not touch the process's.
    pub fn from_sources(
        explicit_file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, SettingsError> {
        let mut raw: RawValues = BTreeMap::new();
        for spec in SETTINGS {
            if let Some(d) = spec.default {
                raw.insert(spec.key, (d.to_string(), Source::Default));
            }
        }

        let file = match explicit_file {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                p.exists().then_some(p)
            }
        };
        if let Some(path) = file {
            layer_file(&mut raw, &path)?;
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else { continue };
            let key = key.to_ascii_lowercase();
            // Other SWITCHBOARD_* variables (e.g. the test harness's) are not settings.
            if let Some(spec) = SETTINGS.iter().find(|s| s.key == key) {
                raw.insert(spec.key, (value.clone(), Source::Env));
            }
        }
        Self::parse_raw(&raw)
    }

    fn parse_raw(raw: &RawValues) -> Result<Self, SettingsError> {
        let p = Parser { raw };
        Ok(Settings {
            bind: p.req("bind", |v| {
                v.parse::<SocketAddr>().map_err(|_| "expected an address like 127.0.0.1:8080".to_string())
            })?,
            database_url: p.req("database_url", DatabaseUrl::parse)?,
            mail: p.req("mail", MailSetting::parse)?,
            bootstrap_admin: p.opt("bootstrap_admin", |v| {
                let v = v.trim();
                match v.split_once('@') {
                    Some((l, d)) if !l.is_empty() && d.contains('.') => Ok(v.to_ascii_lowercase()),
                    _ => Err("expected an email address".to_string()),
                }
            })?,
            sla_urgent: p.req("sla_urgent", parse_positive_duration)?,
            sla_standard: p.req("sla_standard", parse_positive_duration)?,
            sla_batch: p.req("sla_batch", parse_positive_duration)?,
            reservation_timeout: p.req("reservation_timeout", ReservationTimeout::parse)?,
            webhook_retry_schedule: p.req("webhook_retry_schedule", |v| {
                v.split(',').map(|part| parse_positive_duration(part.trim())).collect::<Result<Vec<_>, _>>()
            })?,
            webhook_allow_private: p.req("webhook_allow_private", parse_bool)?,
            master_key: p.opt("master_key", MasterKey::parse)?,
            outbound_allow: p.opt("outbound_allow", |v| {
                v.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|c| {
                        c.trim()
                            .parse::<IpNet>()
                            .map_err(|_| format!("{:?} is not a CIDR like 127.0.0.0/8", c.trim()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })?,
            tenant_runtime: p.req("tenant_runtime", |v| match v {
                "embedded" => Ok(TenantRuntime::Embedded),
                "process" => Ok(TenantRuntime::Process),
                _ => Err("expected embedded or process".to_string()),
            })?,
            runtime_bin: p.opt("runtime_bin", |v| Ok(PathBuf::from(v)))?,
            runtime_start_timeout: p.req("runtime_start_timeout", parse_positive_duration)?,
            runtime_restart_backoff: p.req("runtime_restart_backoff", parse_positive_duration)?,
            runtime_max_restarts: p.req("runtime_max_restarts", |v| match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err("expected a whole number from 1 to 1000".to_string()),
            })?,
            runtime_restart_window: p.req("runtime_restart_window", parse_positive_duration)?,
            resource_sample_interval: p.req("resource_sample_interval", parse_positive_duration)?,
            jwt_ttl: p.req("jwt_ttl", parse_positive_duration)?,
            provider_timeout: p.req("provider_timeout", parse_positive_duration)?,
            provider_circuit_threshold: p.req("provider_circuit_threshold", |v| match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err("expected a whole number from 1 to 1000".to_string()),
            })?,
            provider_circuit_cooldown: p.req("provider_circuit_cooldown", parse_positive_duration)?,
            log: p.req("log", |v| {
                tracing_subscriber::EnvFilter::try_new(v)
                    .map(|_| v.to_string())
                    .map_err(|e| format!("not a tracing filter: {e}"))
            })?,
            log_format: p.req("log_format", |v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected text or json".to_string()),
            })?,
            data_dir: p.req("data_dir", |v| {
                if v.is_empty() {
                    Err("must not be empty".to_string())
                } else {
                    Ok(PathBuf::from(v))
                }
            })?,
            store_batch_window: p.req("store_batch_window", parse_duration)?,
            store_batch_max: p.req("store_batch_max", |v| match v.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err("expected a whole number from 1 to 100000".to_string()),
            })?,
            db_pool_size: p.req("db_pool_size", |v| match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err("expected a whole number from 1 to 1000".to_string()),
            })?,
            shutdown_timeout: p.req("shutdown_timeout", parse_duration)?,
            client_header_timeout: p.req("client_header_timeout", parse_positive_duration)?,
            client_body_timeout: p.req("client_body_timeout", parse_positive_duration)?,
            keep_alive: p.req("keep_alive", parse_positive_duration)?,
            signin_limit_per_email: p.req("signin_limit_per_email", RateQuota::parse)?,
            signin_limit_per_client: p.req("signin_limit_per_client", RateQuota::parse)?,
        })
    }

    pub fn sla_for(&self, priority: switchboard_actors::model::Priority) -> Duration {
        use switchboard_actors::model::Priority;
        match priority {
            Priority::Urgent => self.sla_urgent,
            Priority::Standard => self.sla_standard,
            Priority::Batch => self.sla_batch,
        }
    }
}

fn layer_file(raw: &mut RawValues, path: &Path) -> Result<(), SettingsError> {
    let file_err =
        |message: String| SettingsError { setting: format!("--config {}", path.display()), message };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read: {e}")))?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| file_err(format!("not valid TOML: {}", e.message())))?;
    for (key, value) in table {
        let Some(spec) = SETTINGS.iter().find(|s| s.key == key) else {
            return Err(file_err(format!("unknown setting {key:?}")));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s),
                    other => Ok(other.to_string()),
                })
                .collect::<Result<Vec<_>, SettingsError>>()?
                .join(","),
            other => {
                return Err(file_err(format!(
                    "{key}: expected a string, number, boolean or list, got {}",
                    other.type_str()
                )))
            }
        };
        raw.insert(spec.key, (text, Source::File(path.to_path_buf())));
    }
    Ok(())
}

struct Parser<'a> {
    raw: &'a RawValues,
}

impl Parser<'_> {
    fn req<T>(&self, key: &'static str, f: impl Fn(&str) -> Result<T, String>) -> Result<T, SettingsError> {
        match self.opt(key, f)? {
            Some(v) => Ok(v),
            None => Err(SettingsError { setting: env_name(key), message: "is required".into() }),
        }
    }

    fn opt<T>(
        &self,
        key: &'static str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError> {
        let Some((value, source)) = self.raw.get(key) else { return Ok(None) };
        if value.trim().is_empty() && *source == Source::Env {
            // An empty variable means "not set", as shells make it easy to blank one.
            return Ok(None);
        }
        f(value.trim()).map(Some).map_err(|message| {
            let shown = if key == "master_key" { "***".to_string() } else { format!("{value:?}") };
            SettingsError { setting: env_name(key), message: format!("{shown} (from {source}): {message}") }
        })
    }
}

pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// `250ms`, `30s`, `5m`, `24h`, `1h30m`, `2d`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|_| format!("expected a duration like 250ms, 30s, 5m or 24h, got {raw:?}"))
}

fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    let d = parse_duration(raw)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn durations_parse_in_the_documented_forms() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn reservation_timeout_is_a_share_or_a_duration() {
        let sla = Duration::from_secs(100);
        assert_eq!(ReservationTimeout::parse("20%").unwrap().for_sla(sla), Duration::from_secs(20));
        assert_eq!(ReservationTimeout::parse("3s").unwrap().for_sla(sla), Duration::from_secs(3));
        assert!(ReservationTimeout::parse("0%").is_err());
        assert!(ReservationTimeout::parse("150%").is_err());
    }

    #[test]
    fn postgres_passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://sb:secret@127.0.0.1:5432/db").unwrap();
        assert_eq!(url.to_string(), "postgres://sb:***@127.0.0.1:5432/db");
    }

    #[test]
    fn empty_env_value_means_unset() {
        let s = Settings::from_sources(None, &env(&[("SWITCHBOARD_OUTBOUND_ALLOW", "")])).unwrap();
        assert!(s.outbound_allow.is_none());
    }

    #[test]
    fn master_key_value_is_never_echoed() {
        let err = Settings::from_sources(None, &env(&[("SWITCHBOARD_MASTER_KEY", "c2VjcmV0")])).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }
}
