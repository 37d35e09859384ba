//! The Twilio Messages API: `POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json`,
//! a form with `To`, `Body` and `From` or `MessagingServiceSid`, HTTP Basic with the
//! account SID and auth token.
//!
//! A request is never retried here: a timed-out request may still have been accepted, and
//! a second one would send a second code.

use reqwest::StatusCode;

use super::{SmsError, SmsMessage, SmsSender};
use crate::config::{Secret, TwilioSender as Origin, TwilioSettings};

pub struct TwilioSender {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: Secret,
    sender: Origin,
}

impl TwilioSender {
    pub fn new(settings: &TwilioSettings) -> Result<Self, SmsError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SmsError::Setup(e.to_string()))?;
        let base = settings.base_url.as_str().trim_end_matches('/');
        Ok(Self {
            client,
            url: format!(
                "{base}/2010-04-01/Accounts/{}/Messages.json",
                settings.account_sid
            ),
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            sender: settings.sender.clone(),
        })
    }
}

#[derive(serde::Deserialize)]
struct TwilioError {
    code: Option<i64>,
}

#[async_trait::async_trait]
impl SmsSender for TwilioSender {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let mut form = vec![("To", message.to.e164()), ("Body", message.body())];
        match &self.sender {
            Origin::From(number) => form.push(("From", number)),
            Origin::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        let response = self
            .client
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(transport_error(&e)))?;
        let status = response.status();
        if status.is_success() {
            // TODO: delivery receipts (Twilio status callbacks) are not read, so a message
            // the carrier drops after Twilio accepted it still counts as sent.
            return Ok(());
        }
        // Twilio's own message may quote the number; only its numeric code is kept.
        let code = response
            .json::<TwilioError>()
            .await
            .ok()
            .and_then(|e| e.code)
            .map_or_else(|| "none".to_owned(), |c| c.to_string());
        let detail = format!("HTTP {}, Twilio error code {code}", status.as_u16());
        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            Err(SmsError::Rejected(detail))
        } else {
            Err(SmsError::Unavailable(detail))
        }
    }

    fn provider(&self) -> &'static str {
        "twilio"
    }
}

/// What went wrong on the wire, without the URL or any header.
pub(super) fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the request timed out".into()
    } else if error.is_connect() {
        "the connection failed".into()
    } else {
        "the request failed".into()
    }
}
