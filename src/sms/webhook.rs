//! A signed HTTP webhook: `POST` of `{"type": "sms.send", "data": {"to", "text"}}` to the
//! operator's URL, signed per Standard Webhooks: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
//!
//! The `webhook-id` is the message's id, so a receiver can drop a duplicate delivery.

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::twilio::transport_error;
use super::{SmsError, SmsMessage, SmsSender};
use crate::clock::Clock;
use crate::config::{SigningKey, WebhookSettings};

pub struct WebhookSender {
    client: reqwest::Client,
    url: url::Url,
    key: SigningKey,
    clock: Arc<dyn Clock>,
}

impl WebhookSender {
    pub fn new(settings: &WebhookSettings, clock: Arc<dyn Clock>) -> Result<Self, SmsError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SmsError::Setup(e.to_string()))?;
        Ok(Self {
            client,
            url: settings.url.clone(),
            key: settings.key.clone(),
            clock,
        })
    }
}

/// The `webhook-signature` value for one delivery: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under `key`.
pub fn webhook_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{id}.{timestamp}.").as_bytes());
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

#[async_trait::async_trait]
impl SmsSender for WebhookSender {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let payload = serde_json::json!({
            "type": "sms.send",
            "data": {"to": message.to.e164(), "text": message.body()},
        });
        let body = serde_json::to_vec(&payload).expect("a JSON value serialises");
        let timestamp = self.clock.now();
        let signature = webhook_signature(&self.key.0, &message.id, timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(transport_error(&e)))?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(SmsError::Unavailable(format!("HTTP {status}"))),
            _ => Err(SmsError::Rejected(format!("HTTP {status}"))),
        }
    }

    fn provider(&self) -> &'static str {
        "webhook"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_follows_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = webhook_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
