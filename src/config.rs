//! Configuration: a TOML file, overridden key by key by `CALLSIGN_<SECTION>__<KEY>`
//! environment variables, then validated into typed [`Settings`] before anything starts.
//!
//! Loading is strict: an unknown key or a bad value stops start-up with the key's name.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use phonenumber::country::Id as Region;
use serde::{Deserialize, Serialize};

use crate::keys::Algorithm;

mod limits;
mod sms;

pub use limits::{Cap, CapConfig, IpRange, LimitSettings, LimitsConfig, NumberKind};
pub use sms::{
    DEFAULT_TEMPLATE, ProviderSettings, SigningKey, SmsConfig, SmsProvider, SmsSettings,
    TestNumber, TestNumberConfig, TwilioConfig, TwilioSender, TwilioSettings, WebhookConfig,
    WebhookSettings,
};

/// The configuration file read when `--config` is not given and the file exists.
pub const DEFAULT_FILE: &str = "callsign.toml";
const ENV_PREFIX: &str = "CALLSIGN_";
/// Variables under this prefix belong to the test suite, not to the server.
const ENV_RESERVED_PREFIX: &str = "CALLSIGN_TEST_";

/// The configuration as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer identifier; defaults to `http://<listen address>`.
    pub issuer: Option<String>,
    pub listen: String,
    pub database_url: String,
    /// Folder of static documents served under `/.well-known/`.
    pub well_known_dir: PathBuf,
    pub log: LogConfig,
    pub otp: OtpConfig,
    pub phone: PhoneConfig,
    pub phone_token: PhoneTokenConfig,
    pub sms: SmsConfig,
    pub signup: SignupConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub console: ConsoleConfig,
}

/// Sessions of the admin console at `/admin`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// A session unused this long ends (sliding lifetime).
    pub idle_timeout_seconds: u32,
    /// No session lasts longer than this after signing in (absolute lifetime).
    pub max_lifetime_seconds: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            idle_timeout_seconds: 900,
            max_lifetime_seconds: 8 * 3600,
        }
    }
}

/// Lifetimes of the browser flow's artefacts and of refresh tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub authorization_code_ttl_seconds: u32,
    pub id_token_ttl_seconds: u32,
    /// A refresh token unused this long expires (sliding lifetime).
    pub refresh_token_idle_seconds: u32,
    /// No refresh token outlives its sign-in by more than this (absolute lifetime).
    pub refresh_token_max_seconds: u32,
    /// How long a person has to finish signing in.
    pub login_ttl_seconds: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            authorization_code_ttl_seconds: 60,
            id_token_ttl_seconds: 300,
            refresh_token_idle_seconds: 14 * 86_400,
            refresh_token_max_seconds: 90 * 86_400,
            login_ttl_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpConfig {
    pub length: u32,
    pub ttl_seconds: u32,
    pub max_attempts: u32,
    pub resend_after_seconds: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneConfig {
    /// ISO 3166 region used to read national numbers (those without `+`).
    pub default_region: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneTokenConfig {
    pub ttl_seconds: u32,
    /// Audiences added to every phone token beside the issuer.
    pub audiences: Vec<String>,
}

/// A configured secret: `Debug` and serialisation print a fixed marker, never the value.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; only for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupConfig {
    /// Whether a verified phone with no user gets a new user at token exchange.
    pub create_users: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// `Cache-Control: max-age` of the JWKS document.
    pub jwks_max_age_seconds: u32,
    /// How long a key signs before the next one takes over; 0 turns scheduled rotation off.
    pub rotation_period_seconds: u32,
    /// How often each instance reloads the keys from the database.
    pub refresh_seconds: u32,
    /// `ES256`, `EdDSA` or `RS256`.
    pub phone_token_algorithm: String,
    pub access_token_algorithm: String,
    pub id_token_algorithm: String,
    /// Encrypts private keys at rest; at least 32 characters.
    pub encryption_secret: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub request_timeout_seconds: u32,
    pub max_body_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: None,
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://callsign.db".into(),
            well_known_dir: PathBuf::from("well-known"),
            log: LogConfig::default(),
            otp: OtpConfig::default(),
            phone: PhoneConfig::default(),
            phone_token: PhoneTokenConfig::default(),
            sms: SmsConfig::default(),
            signup: SignupConfig::default(),
            keys: KeysConfig::default(),
            tokens: TokensConfig::default(),
            http: HttpConfig::default(),
            limits: LimitsConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "callsign=info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            length: 6,
            ttl_seconds: 300,
            max_attempts: 5,
            resend_after_seconds: 30,
        }
    }
}

impl Default for PhoneTokenConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: 300,
            audiences: Vec::new(),
        }
    }
}

impl Default for SignupConfig {
    fn default() -> Self {
        Self { create_users: true }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            jwks_max_age_seconds: 300,
            rotation_period_seconds: 30 * 24 * 3600,
            refresh_seconds: 30,
            phone_token_algorithm: "ES256".into(),
            access_token_algorithm: "ES256".into(),
            id_token_algorithm: "RS256".into(),
            encryption_secret: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout_seconds: 15,
            max_body_bytes: 16 * 1024,
        }
    }
}

/// A configuration that could not be loaded, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: `{key}` {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: &str, problem: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.to_string(),
    }
}

impl Config {
    /// Reads `file` (or [`DEFAULT_FILE`] when present), then applies `CALLSIGN_*` variables.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let default_file = Path::new(DEFAULT_FILE);
        let path = file.or_else(|| default_file.exists().then_some(default_file));
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let file_only = table.clone();
        let overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| {
                name.starts_with(ENV_PREFIX) && !name.starts_with(ENV_RESERVED_PREFIX)
            })
            .collect();
        for (name, value) in &overrides {
            apply_env(&mut table, name, value)?;
        }
        match deserialize(&table) {
            Ok(config) => Ok(config),
            // Name the variable at fault when the file alone was fine.
            Err(error) if deserialize(&file_only).is_ok() => {
                let mut partial = file_only;
                for (name, value) in &overrides {
                    apply_env(&mut partial, name, value)?;
                    if let Err(error) = deserialize(&partial) {
                        return Err(ConfigError::Parse(format!(
                            "environment variable {name}: {error}"
                        )));
                    }
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Checks every value and turns the configuration into typed settings.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let listen = SocketAddr::from_str(&self.listen).map_err(|_| {
            invalid(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8080",
            )
        })?;
        let issuer = self.issuer.as_deref().map(validate_issuer).transpose()?;
        if issuer.is_none() && listen.ip().is_unspecified() {
            return Err(invalid(
                "issuer",
                "must be set when listening on all interfaces: it cannot be derived from 0.0.0.0",
            ));
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        let otp = &self.otp;
        check_range("otp.length", otp.length, 6, 10)?;
        check_range("otp.ttl_seconds", otp.ttl_seconds, 30, 600)?;
        check_range("otp.max_attempts", otp.max_attempts, 1, 100)?;
        check_range(
            "otp.resend_after_seconds",
            otp.resend_after_seconds,
            0,
            3600,
        )?;
        check_range(
            "phone_token.ttl_seconds",
            self.phone_token.ttl_seconds,
            30,
            900,
        )?;
        let keys = self.keys_settings()?;
        let tokens = self.token_settings()?;
        check_range(
            "http.request_timeout_seconds",
            self.http.request_timeout_seconds,
            1,
            300,
        )?;
        check_range(
            "http.max_body_bytes",
            self.http.max_body_bytes,
            1024,
            1 << 20,
        )?;
        if self
            .phone_token
            .audiences
            .iter()
            .any(|a| a.trim().is_empty() || a.contains(' '))
        {
            return Err(invalid(
                "phone_token.audiences",
                "must not contain empty or spaced values",
            ));
        }
        let default_region = match &self.phone.default_region {
            Some(region) => Some(
                Region::from_str(&region.to_ascii_uppercase())
                    .map_err(|_| invalid("phone.default_region", "is not an ISO 3166 region"))?,
            ),
            None => None,
        };
        let sms = self.sms.validate(otp.length)?;
        let limits = self.limits.validate()?;

        Ok(Settings {
            issuer,
            listen,
            database_url: self.database_url.clone(),
            well_known_dir: self.well_known_dir.clone(),
            otp: OtpSettings {
                length: otp.length,
                ttl: i64::from(otp.ttl_seconds),
                max_attempts: i64::from(otp.max_attempts),
                resend_after: i64::from(otp.resend_after_seconds),
            },
            default_region,
            phone_token_ttl: i64::from(self.phone_token.ttl_seconds),
            phone_token_audiences: self.phone_token.audiences.clone(),
            sms,
            limits,
            create_users: self.signup.create_users,
            jwks_max_age: self.keys.jwks_max_age_seconds,
            keys,
            tokens,
            request_timeout: std::time::Duration::from_secs(
                self.http.request_timeout_seconds.into(),
            ),
            max_body_bytes: self.http.max_body_bytes,
            console: self.console_settings()?,
        })
    }

    fn console_settings(&self) -> Result<ConsoleSettings, ConfigError> {
        let c = &self.console;
        check_range(
            "console.idle_timeout_seconds",
            c.idle_timeout_seconds,
            60,
            86_400,
        )?;
        check_range(
            "console.max_lifetime_seconds",
            c.max_lifetime_seconds,
            c.idle_timeout_seconds,
            7 * 86_400,
        )?;
        Ok(ConsoleSettings {
            idle_timeout: i64::from(c.idle_timeout_seconds),
            max_lifetime: i64::from(c.max_lifetime_seconds),
        })
    }

    fn token_settings(&self) -> Result<TokenSettings, ConfigError> {
        let t = &self.tokens;
        check_range(
            "tokens.authorization_code_ttl_seconds",
            t.authorization_code_ttl_seconds,
            10,
            600,
        )?;
        check_range(
            "tokens.id_token_ttl_seconds",
            t.id_token_ttl_seconds,
            60,
            3600,
        )?;
        check_range("tokens.login_ttl_seconds", t.login_ttl_seconds, 60, 3600)?;
        let year = 365 * 86_400;
        check_range(
            "tokens.refresh_token_idle_seconds",
            t.refresh_token_idle_seconds,
            3600,
            year,
        )?;
        let idle = t.refresh_token_idle_seconds;
        check_range(
            "tokens.refresh_token_max_seconds",
            t.refresh_token_max_seconds,
            idle,
            2 * year,
        )?;
        Ok(TokenSettings {
            code_ttl: i64::from(t.authorization_code_ttl_seconds),
            id_token_ttl: i64::from(t.id_token_ttl_seconds),
            refresh_idle: i64::from(t.refresh_token_idle_seconds),
            refresh_max: i64::from(t.refresh_token_max_seconds),
            login_ttl: i64::from(t.login_ttl_seconds),
        })
    }

    fn keys_settings(&self) -> Result<KeySettingsConfig, ConfigError> {
        let keys = &self.keys;
        check_range(
            "keys.jwks_max_age_seconds",
            keys.jwks_max_age_seconds,
            0,
            86_400,
        )?;
        check_range("keys.refresh_seconds", keys.refresh_seconds, 1, 300)?;
        let period = keys.rotation_period_seconds;
        if period != 0 && period < 3600 {
            return Err(invalid(
                "keys.rotation_period_seconds",
                "must be 0 (off) or at least 3600",
            ));
        }
        let algorithm = |key: &str, name: &str| {
            Algorithm::parse(name).ok_or_else(|| invalid(key, "must be ES256, EdDSA or RS256"))
        };
        if let Some(secret) = &keys.encryption_secret
            && secret.expose().chars().count() < 32
        {
            return Err(invalid(
                "keys.encryption_secret",
                "must be at least 32 characters",
            ));
        }
        Ok(KeySettingsConfig {
            phone_token_algorithm: algorithm(
                "keys.phone_token_algorithm",
                &keys.phone_token_algorithm,
            )?,
            access_token_algorithm: algorithm(
                "keys.access_token_algorithm",
                &keys.access_token_algorithm,
            )?,
            id_token_algorithm: algorithm("keys.id_token_algorithm", &keys.id_token_algorithm)?,
            rotation_period: i64::from(period),
            refresh_interval: i64::from(keys.refresh_seconds),
            encryption_secret: keys.encryption_secret.clone(),
        })
    }
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None` means "http://" plus the address the listener is bound to.
    pub issuer: Option<String>,
    pub listen: SocketAddr,
    pub database_url: String,
    pub well_known_dir: PathBuf,
    pub otp: OtpSettings,
    pub default_region: Option<Region>,
    pub phone_token_ttl: i64,
    pub phone_token_audiences: Vec<String>,
    pub sms: SmsSettings,
    pub limits: LimitSettings,
    pub create_users: bool,
    pub jwks_max_age: u32,
    pub keys: KeySettingsConfig,
    pub tokens: TokenSettings,
    pub request_timeout: std::time::Duration,
    pub max_body_bytes: usize,
    pub console: ConsoleSettings,
}

/// Validated `[console]` settings, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSettings {
    pub idle_timeout: i64,
    pub max_lifetime: i64,
}

/// Validated `[tokens]` settings, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct TokenSettings {
    pub code_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_idle: i64,
    pub refresh_max: i64,
    pub login_ttl: i64,
}

/// Validated `[keys]` settings.
#[derive(Debug, Clone)]
pub struct KeySettingsConfig {
    pub phone_token_algorithm: Algorithm,
    pub access_token_algorithm: Algorithm,
    pub id_token_algorithm: Algorithm,
    pub rotation_period: i64,
    pub refresh_interval: i64,
    pub encryption_secret: Option<Secret>,
}

#[derive(Debug, Clone, Copy)]
pub struct OtpSettings {
    pub length: u32,
    pub ttl: i64,
    pub max_attempts: i64,
    pub resend_after: i64,
}

fn check_range<T: PartialOrd + fmt::Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            key,
            format!("must be between {min} and {max}, not {value}"),
        ));
    }
    Ok(())
}

/// An issuer is an absolute https URL without query or fragment (RFC 8414 §2); plain http
/// is accepted only for loopback development servers.
fn validate_issuer(issuer: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(issuer).map_err(|e| invalid("issuer", e))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(
                "issuer",
                "must use https (http only for loopback hosts)",
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "issuer",
            "must not have a query, a fragment or user information",
        ));
    }
    if issuer.ends_with('/') {
        return Err(invalid("issuer", "must not end with '/'"));
    }
    Ok(issuer.to_owned())
}

/// Deserialises from text so that errors point at the offending key.
fn deserialize(table: &toml::Table) -> Result<Config, ConfigError> {
    let text = toml::to_string(table).map_err(|e| ConfigError::Parse(e.to_string()))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse(e.to_string()))
}

fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = name[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Parse(format!(
            "environment variable {name} names no key"
        )));
    }
    let (last, sections) = path.split_last().expect("split yields at least one part");
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| {
            ConfigError::Parse(format!(
                "environment variable {name}: `{section}` is not a section"
            ))
        })?;
    }
    current.insert(last.clone(), env_value(value));
    Ok(())
}

/// Reads a variable as a TOML value (number, boolean, array, quoted string), or else as a
/// plain string, so `CALLSIGN_OTP__MAX_ATTEMPTS=3` and `CALLSIGN_ISSUER=https://…` both work.
fn env_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !matches!(v, toml::Value::Datetime(_)))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callsign.toml");
        std::fs::write(&path, toml_text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(Some(&path), env)
    }

    #[test]
    fn defaults_make_a_loopback_development_server() {
        let settings = load("", &[]).unwrap().validate().unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url, "sqlite://callsign.db");
        assert_eq!(settings.otp.max_attempts, 5);
    }

    #[test]
    fn environment_variables_override_file_values() {
        let config = load(
            "[otp]\nmax_attempts = 7\n",
            &[("CALLSIGN_OTP__MAX_ATTEMPTS", "3")],
        );
        assert_eq!(config.unwrap().otp.max_attempts, 3);
        let config = load("", &[("CALLSIGN_ISSUER", "https://auth.example.test")]).unwrap();
        assert_eq!(config.issuer.as_deref(), Some("https://auth.example.test"));
    }

    #[test]
    fn unknown_keys_stop_loading_with_the_key_named() {
        let error = load("[otp]\nmax_attempt = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_attempt"), "{error}");
        let error = load("", &[("CALLSIGN_OTP__LENGHT", "6")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("CALLSIGN_OTP__LENGHT") && error.contains("lenght"),
            "{error}"
        );
        let error = load("colour = 1\n", &[]).unwrap_err().to_string();
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn bad_values_stop_validation_with_the_key_named() {
        let cases = [
            ("[otp]\nmax_attempts = 0\n", "otp.max_attempts"),
            ("[otp]\nttl_seconds = 3600\n", "otp.ttl_seconds"),
            ("[otp]\nlength = 4\n", "otp.length"),
            ("issuer = \"http://auth.example.test\"\n", "issuer"),
            ("issuer = \"https://auth.example.test/\"\n", "issuer"),
            ("issuer = \"https://auth.example.test?x=1\"\n", "issuer"),
            ("listen = \"nowhere\"\n", "listen"),
            ("database_url = \"mysql://x\"\n", "database_url"),
            ("[phone]\ndefault_region = \"XX\"\n", "phone.default_region"),
            (
                "[sms.test_numbers]\n\"+12025550100\" = \"12\"\n",
                "sms.test_numbers",
            ),
            (
                "[sms.test_numbers]\n\"2025550100\" = \"123456\"\n",
                "sms.test_numbers",
            ),
            (
                "[keys]\nrotation_period_seconds = 60\n",
                "keys.rotation_period_seconds",
            ),
            (
                "[keys]\naccess_token_algorithm = \"HS256\"\n",
                "keys.access_token_algorithm",
            ),
            (
                "[keys]\nencryption_secret = \"short\"\n",
                "keys.encryption_secret",
            ),
            ("listen = \"0.0.0.0:8080\"\n", "issuer"),
        ];
        for (text, key) in cases {
            let error = load(text, &[]).unwrap().validate().unwrap_err().to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
        let error = load("[sms]\nprovider = \"pigeon\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("pigeon"), "{error}");
    }

    #[test]
    fn bad_limit_and_provider_values_stop_validation_with_the_key_named() {
        let cases = [
            (
                "[limits]\nallowed_regions = [\"XX\"]\n",
                "limits.allowed_regions",
            ),
            (
                "[limits]\ntrusted_proxies = [\"lb\"]\n",
                "limits.trusted_proxies",
            ),
            ("[limits]\nprefix_digits = 1\n", "limits.prefix_digits"),
            (
                "[limits.per_phone]\nmax = 5\nwindow_seconds = 0\n",
                "limits.per_phone.window_seconds",
            ),
            ("[sms]\nprovider = \"twilio\"\n", "sms.twilio"),
            (
                "[sms]\nprovider = \"webhook\"\n[sms.webhook]\nurl = \"https://h.test\"\n\
                 secret = \"plain\"\n",
                "sms.webhook.secret",
            ),
            (
                "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"AC1\"\n\
                 auth_token = \"t\"\n",
                "sms.twilio",
            ),
            ("[sms.templates]\nen = \"no code\"\n", "sms.templates.en"),
            (
                "[sms.test_numbers]\n\
                 \"+12025550100\" = { code = \"123456\", expires = \"soon\" }\n",
                "sms.test_numbers",
            ),
        ];
        for (text, key) in cases {
            let error = load(text, &[]).unwrap().validate().unwrap_err().to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
    }

    #[test]
    fn variables_reserved_for_the_test_suite_are_ignored() {
        let config = load("", &[("CALLSIGN_TEST_POSTGRES_URL", "postgres://x")]);
        assert!(config.is_ok());
    }
}
