//! `[sms]`: the provider, the message templates and the test numbers, validated.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, check_range, invalid};
use crate::phone::Phone;

/// The built-in English message; `{expiry}` reads "5 minutes".
pub const DEFAULT_TEMPLATE: &str =
    "Your {app} code is {code}. It expires in {expiry}. Do not share it.";
/// Placeholders a template may use.
const PLACEHOLDERS: [&str; 4] = ["{app}", "{code}", "{minutes}", "{expiry}"];

/// The `[sms]` section as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub provider: SmsProvider,
    /// The name people see in the message.
    pub app_name: String,
    /// The locale whose template is used when the request names none that is configured.
    pub default_locale: String,
    /// Locale (BCP 47 tag, e.g. `en`, `fr`, `pt-BR`) → message template with `{app}`,
    /// `{code}`, `{minutes}` and `{expiry}` placeholders.
    pub templates: BTreeMap<String, String>,
    /// Adds the WebOTP line `@host #code` (with this host) at the end of every message.
    pub web_otp_host: Option<String>,
    /// E.164 number → fixed code (or `{ code, expires }`); no SMS is ever sent to these.
    pub test_numbers: BTreeMap<String, TestNumberConfig>,
    pub twilio: Option<TwilioConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// A test number's fixed code, optionally with the last day (UTC) it works.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TestNumberConfig {
    Code(String),
    Entry {
        code: String,
        /// `YYYY-MM-DD`, quoted or as a TOML date.
        expires: Option<toml::Value>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// Prints messages on standard output, for development.
    Console,
    /// The Twilio Messages API.
    Twilio,
    /// A signed JSON POST (Standard Webhooks) to a URL of the operator's.
    Webhook,
}

/// `[sms.twilio]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    /// The sending number; or use `messaging_service_sid`.
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    #[serde(default = "default_twilio_url")]
    pub base_url: String,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u32,
}

/// `[sms.webhook]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// `whsec_` followed by the base64 signing key.
    pub secret: Secret,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u32,
}

fn default_twilio_url() -> String {
    "https://api.twilio.com".into()
}

fn default_provider_timeout() -> u32 {
    10
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            provider: SmsProvider::Console,
            app_name: "callsign".into(),
            default_locale: "en".into(),
            templates: BTreeMap::new(),
            web_otp_host: None,
            test_numbers: BTreeMap::new(),
            twilio: None,
            webhook: None,
        }
    }
}

/// The validated `[sms]` section.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    pub provider: ProviderSettings,
    pub app_name: String,
    /// Lower-case locale → template; always holds `default_locale`.
    pub templates: BTreeMap<String, String>,
    pub default_locale: String,
    pub web_otp_host: Option<String>,
    /// E.164 → fixed code and expiry.
    pub test_numbers: HashMap<String, TestNumber>,
}

/// A number that gets a fixed code and no SMS, until `expires_at` (exclusive).
#[derive(Clone)]
pub struct TestNumber {
    pub code: String,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for TestNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNumber")
            .field("code", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl SmsSettings {
    /// The fixed code of a test number that has not expired at `now`.
    pub fn test_code(&self, e164: &str, now: i64) -> Option<&str> {
        let number = self.test_numbers.get(e164)?;
        match number.expires_at {
            Some(expires_at) if now >= expires_at => None,
            _ => Some(&number.code),
        }
    }
}

#[derive(Debug, Clone)]
pub enum ProviderSettings {
    Console,
    Twilio(TwilioSettings),
    Webhook(WebhookSettings),
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: Secret,
    pub sender: TwilioSender,
    pub base_url: url::Url,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    From(String),
    MessagingService(String),
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: url::Url,
    /// The decoded signing key of the `whsec_` secret.
    pub key: SigningKey,
    pub timeout: std::time::Duration,
}

/// Key bytes whose `Debug` prints a fixed marker.
#[derive(Clone)]
pub struct SigningKey(pub Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for TestNumberConfig {
    fn from(code: &str) -> Self {
        TestNumberConfig::Code(code.to_owned())
    }
}

impl SmsConfig {
    pub(super) fn validate(&self, code_length: u32) -> Result<SmsSettings, ConfigError> {
        let app_name = self.app_name.trim();
        if app_name.is_empty() || app_name.chars().count() > 40 {
            return Err(invalid("sms.app_name", "must be 1 to 40 characters"));
        }
        let default_locale = self.default_locale.trim().to_ascii_lowercase();
        let mut templates = BTreeMap::new();
        for (locale, template) in &self.templates {
            check_template(&format!("sms.templates.{locale}"), template)?;
            templates.insert(locale.to_ascii_lowercase(), template.clone());
        }
        templates
            .entry(default_locale.clone())
            .or_insert_with(|| DEFAULT_TEMPLATE.to_owned());
        if let Some(host) = &self.web_otp_host
            && (host.is_empty()
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c)))
        {
            return Err(invalid("sms.web_otp_host", "must be a bare host name"));
        }
        Ok(SmsSettings {
            provider: self.provider()?,
            app_name: app_name.to_owned(),
            templates,
            default_locale,
            web_otp_host: self.web_otp_host.clone(),
            test_numbers: self.test_numbers(code_length)?,
        })
    }

    fn provider(&self) -> Result<ProviderSettings, ConfigError> {
        match self.provider {
            SmsProvider::Console => Ok(ProviderSettings::Console),
            SmsProvider::Twilio => {
                let twilio = self.twilio.as_ref().ok_or_else(|| {
                    invalid("sms.twilio", "is required when sms.provider is twilio")
                })?;
                if twilio.account_sid.trim().is_empty() || twilio.auth_token.expose().is_empty() {
                    return Err(invalid("sms.twilio", "needs account_sid and auth_token"));
                }
                let sender = match (&twilio.from, &twilio.messaging_service_sid) {
                    (Some(from), None) => TwilioSender::From(from.clone()),
                    (None, Some(sid)) => TwilioSender::MessagingService(sid.clone()),
                    _ => {
                        return Err(invalid(
                            "sms.twilio",
                            "needs exactly one of from and messaging_service_sid",
                        ));
                    }
                };
                check_range("sms.twilio.timeout_seconds", twilio.timeout_seconds, 1, 60)?;
                Ok(ProviderSettings::Twilio(TwilioSettings {
                    account_sid: twilio.account_sid.trim().to_owned(),
                    auth_token: twilio.auth_token.clone(),
                    sender,
                    base_url: http_url("sms.twilio.base_url", &twilio.base_url)?,
                    timeout: seconds(twilio.timeout_seconds),
                }))
            }
            SmsProvider::Webhook => {
                let webhook = self.webhook.as_ref().ok_or_else(|| {
                    invalid("sms.webhook", "is required when sms.provider is webhook")
                })?;
                check_range(
                    "sms.webhook.timeout_seconds",
                    webhook.timeout_seconds,
                    1,
                    60,
                )?;
                Ok(ProviderSettings::Webhook(WebhookSettings {
                    url: http_url("sms.webhook.url", &webhook.url)?,
                    key: webhook_key(&webhook.secret)?,
                    timeout: seconds(webhook.timeout_seconds),
                }))
            }
        }
    }

    fn test_numbers(&self, length: u32) -> Result<HashMap<String, TestNumber>, ConfigError> {
        let mut numbers = HashMap::new();
        for (number, entry) in &self.test_numbers {
            let key = format!("sms.test_numbers.\"{number}\"");
            if !number.starts_with('+') {
                return Err(invalid(
                    &key,
                    "must be written in E.164 form, starting with +",
                ));
            }
            let phone = Phone::parse(number, None).map_err(|e| invalid(&key, e))?;
            let (code, expires) = match entry {
                TestNumberConfig::Code(code) => (code, None),
                TestNumberConfig::Entry { code, expires } => (code, expires.as_ref()),
            };
            if code.len() != length as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(&key, format!("must be a code of {length} digits")));
            }
            let expires_at = expires
                .map(|value| end_of_day(value).ok_or_else(|| bad_date(&key)))
                .transpose()?;
            let number = TestNumber {
                code: code.clone(),
                expires_at,
            };
            numbers.insert(phone.e164().to_owned(), number);
        }
        Ok(numbers)
    }
}

fn check_template(key: &str, template: &str) -> Result<(), ConfigError> {
    if !template.contains("{code}") {
        return Err(invalid(key, "must contain {code}"));
    }
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            return Err(invalid(key, "has an unclosed {"));
        };
        let placeholder = &rest[start..start + end + 1];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(invalid(
                key,
                format!("has an unknown placeholder {placeholder}"),
            ));
        }
        rest = &rest[start + end + 1..];
    }
    if template.chars().count() > 300 {
        return Err(invalid(key, "must be at most 300 characters"));
    }
    Ok(())
}

fn http_url(key: &str, text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| invalid(key, e))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(invalid(key, "must be an http or https URL"));
    }
    Ok(url)
}

/// Standard Webhooks secrets are `whsec_` and the base64 key.
fn webhook_key(secret: &Secret) -> Result<SigningKey, ConfigError> {
    let key = "sms.webhook.secret";
    let encoded = secret
        .expose()
        .strip_prefix("whsec_")
        .ok_or_else(|| invalid(key, "must start with whsec_"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| invalid(key, "must be whsec_ followed by base64"))?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(invalid(key, "must hold a key of 24 to 64 bytes"));
    }
    Ok(SigningKey(bytes))
}

fn seconds(value: u32) -> std::time::Duration {
    std::time::Duration::from_secs(value.into())
}

fn bad_date(key: &str) -> ConfigError {
    invalid(key, "expires must be a date written YYYY-MM-DD")
}

/// The first second (UTC) after the given day, from a `YYYY-MM-DD` string or TOML date.
fn end_of_day(value: &toml::Value) -> Option<i64> {
    let text = match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(date) if date.time.is_none() => date.to_string(),
        _ => return None,
    };
    let mut parts = text.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    if text.len() != 10 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some((days_from_civil(year, month, day) + 1) * 86_400)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_date_ends_at_the_next_utc_midnight() {
        let date = toml::Value::String("1970-01-01".into());
        assert_eq!(end_of_day(&date), Some(86_400));
        let date = toml::Value::String("2024-03-01".into());
        assert_eq!(end_of_day(&date), Some(1_709_337_600));
        for bad in ["2024-13-01", "tomorrow", "2024-1-1", "2024-03-01T00:00:00"] {
            assert_eq!(end_of_day(&toml::Value::String(bad.into())), None, "{bad}");
        }
    }

    #[test]
    fn templates_need_the_code_and_known_placeholders_only() {
        assert!(check_template("k", DEFAULT_TEMPLATE).is_ok());
        assert!(check_template("k", "Code: {code} for {app}, {minutes} min").is_ok());
        assert!(check_template("k", "no code here").is_err());
        assert!(check_template("k", "{code} {phone}").is_err());
        assert!(check_template("k", "{code} {").is_err());
    }
}
