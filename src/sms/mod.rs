//! Delivery of one-time codes by SMS, behind one [`SmsSender`] trait.
//!
//! Numbers listed in `[sms.test_numbers]` never reach a sender: their fixed codes let app
//! developers test against a real server without a phone.

mod console;

use std::fmt;
use std::sync::Arc;

pub use console::ConsoleSender;

use crate::config::SmsProvider;
use crate::phone::Phone;

/// One text message. The body contains a code, so `Debug` never shows it.
#[derive(Clone)]
pub struct SmsMessage {
    pub to: Phone,
    body: String,
}

impl SmsMessage {
    pub fn new(to: Phone, body: String) -> Self {
        Self { to, body }
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
}

/// Something that delivers text messages.
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError>;
}

/// The sender the configuration names.
pub fn from_config(provider: SmsProvider) -> Arc<dyn SmsSender> {
    match provider {
        SmsProvider::Console => Arc::new(ConsoleSender),
    }
}

/// The message people receive: the app's name, the code and how long it lasts.
pub fn message_text(app_name: &str, code: &str, ttl_seconds: i64) -> String {
    let minutes = (ttl_seconds + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Your {app_name} code is {code}. It expires in {minutes} {unit}. Do not share it.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_app_the_code_and_the_lifetime() {
        let text = message_text("Acme", "123456", 300);
        assert_eq!(
            text,
            "Your Acme code is 123456. It expires in 5 minutes. Do not share it."
        );
        assert!(message_text("Acme", "1", 45).contains("1 minute."));
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
