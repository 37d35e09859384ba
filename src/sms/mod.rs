//! Delivery of one-time codes by SMS, behind one [`SmsSender`] trait: the console for
//! development, the Twilio Messages API, or a signed webhook.
//!
//! Numbers listed in `[sms.test_numbers]` never reach a sender: their fixed codes let app
//! developers test against a real server without a phone.

mod console;
mod twilio;
mod webhook;

use std::fmt;
use std::sync::Arc;

pub use console::ConsoleSender;
pub use twilio::TwilioSender;
pub use webhook::{WebhookSender, webhook_signature};

use crate::clock::Clock;
use crate::config::{ProviderSettings, SmsSettings};
use crate::crypto::random_id;
use crate::phone::Phone;

/// One text message. The body contains a code, so `Debug` never shows it.
#[derive(Clone)]
pub struct SmsMessage {
    pub to: Phone,
    /// A unique id, sent to providers that take one so that they can drop duplicates.
    pub id: String,
    body: String,
}

impl SmsMessage {
    pub fn new(to: Phone, body: String) -> Self {
        Self {
            to,
            id: random_id("msg_"),
            body,
        }
    }

    /// The text to deliver; hand it to the provider and nowhere else.
    pub fn body(&self) -> &str {
        &self.body
    }
}

impl fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field("to", &self.to)
            .field("id", &self.id)
            .field("body", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("the provider refused the message: {0}")]
    Rejected(String),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the provider client cannot be built: {0}")]
    Setup(String),
}

/// Something that delivers text messages.
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError>;

    /// The provider's name, for logs and metrics.
    fn provider(&self) -> &'static str {
        "custom"
    }
}

/// The sender the configuration names.
pub fn from_config(
    settings: &ProviderSettings,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn SmsSender>, SmsError> {
    Ok(match settings {
        ProviderSettings::Console => Arc::new(ConsoleSender),
        ProviderSettings::Twilio(twilio) => Arc::new(TwilioSender::new(twilio)?),
        ProviderSettings::Webhook(webhook) => Arc::new(WebhookSender::new(webhook, clock)?),
    })
}

/// The message people receive, in the first requested locale that has a template: the
/// app's name, the code and how long it lasts, then the WebOTP line when configured.
///
/// `locales` is a space-separated list of BCP 47 tags, most preferred first (OpenID
/// Connect `ui_locales`); a tag also matches the template of its language (`pt-BR` →
/// `pt`).
pub fn compose(sms: &SmsSettings, locales: Option<&str>, code: &str, ttl_seconds: i64) -> String {
    let template = locales
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(str::to_ascii_lowercase)
        .find_map(|tag| {
            let language = tag.split('-').next().unwrap_or_default().to_owned();
            sms.templates
                .get(&tag)
                .or_else(|| sms.templates.get(&language))
        })
        .or_else(|| sms.templates.get(&sms.default_locale))
        .map_or(crate::config::DEFAULT_TEMPLATE, String::as_str);
    let minutes = (ttl_seconds + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    let mut text = template
        .replace("{app}", &sms.app_name)
        .replace("{minutes}", &minutes.to_string())
        .replace("{expiry}", &format!("{minutes} {unit}"))
        .replace("{code}", code);
    if let Some(host) = &sms.web_otp_host {
        // WebOTP: the last line names the origin's host and the code.
        text.push_str(&format!("\n\n@{host} #{code}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> SmsSettings {
        let config: crate::config::Config = toml::from_str(toml_text).unwrap();
        config.validate().unwrap().sms
    }

    #[test]
    fn the_message_names_the_app_the_code_and_the_lifetime() {
        let sms = settings("[sms]\napp_name = \"Acme\"\n");
        assert_eq!(
            compose(&sms, None, "123456", 300),
            "Your Acme code is 123456. It expires in 5 minutes. Do not share it."
        );
        assert!(compose(&sms, None, "123456", 45).contains("1 minute."));
    }

    #[test]
    fn the_first_requested_locale_with_a_template_is_used() {
        let sms = settings(
            "[sms]\napp_name = \"Acme\"\nweb_otp_host = \"auth.example.test\"\n\
             [sms.templates]\nfr = \"Code {app} : {code} (valable {minutes} min)\"\n",
        );
        let text = compose(&sms, Some("de fr-CA en"), "123456", 300);
        assert_eq!(
            text,
            "Code Acme : 123456 (valable 5 min)\n\n@auth.example.test #123456"
        );
        assert!(compose(&sms, Some("de"), "123456", 300).starts_with("Your Acme code"));
    }

    #[test]
    fn debug_hides_the_body() {
        let phone = Phone::parse("+12025550100", None).unwrap();
        let message = SmsMessage::new(phone, "code 424242".into());
        let debug = format!("{message:?}");
        assert!(
            !debug.contains("424242") && !debug.contains("2025550100"),
            "{debug}"
        );
    }
}
