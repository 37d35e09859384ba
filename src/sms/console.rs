//! The development sender: prints each message on standard output, apart from the logs
//! (which go to standard error and never contain codes).

use std::io::Write;

use super::{SmsError, SmsMessage, SmsSender};

#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleSender;

#[async_trait::async_trait]
impl SmsSender for ConsoleSender {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let line = format!("[console sms] to {}: {}\n", message.to, message.body());
        std::io::stdout()
            .lock()
            .write_all(line.as_bytes())
            .map_err(|e| SmsError::Unavailable(e.to_string()))
    }

    fn provider(&self) -> &'static str {
        "console"
    }
}
