//! What the logs of a whole flow may contain: never a code, a token, a client secret or a
//! full phone number.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{ORDERS, spawn_app_with};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// A current-thread runtime keeps the server's tasks on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_full_flow_logs_no_code_token_secret_or_phone_number() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Ten-digit codes cannot turn up in a log line by chance.
    let app = spawn_app_with(|c| c.otp.length = 10).await;
    let acme = app.acme().await;
    let phone = "+12025550190";

    app.start_otp(&acme, phone).await;
    let code = app.sms.latest_code(phone);
    let wrong = app.otp_grant(&acme, phone, "0000000000").await;
    assert_eq!(wrong.status(), 400);
    let granted: Value = app
        .otp_grant(&acme, phone, &code)
        .await
        .json()
        .await
        .unwrap();
    let phone_token = granted["access_token"].as_str().unwrap().to_owned();
    let exchanged: Value = app
        .exchange(&acme, &phone_token, &[("audience", ORDERS)])
        .await
        .json()
        .await
        .unwrap();
    let access_token = exchanged["access_token"].as_str().unwrap().to_owned();
    let refused = app.exchange(&acme, &access_token, &[]).await;
    assert_eq!(refused.status(), 400);
    let secret = acme.secret.clone().unwrap();
    let basic = app
        .http
        .post(app.url("/token"))
        .basic_auth(&acme.id, Some("wrong-secret-value"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    app.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("phone token issued") && logs.contains("access token issued"),
        "{logs}"
    );
    assert!(logs.contains("+1••••••••90"), "the phone appears masked");
    let signature = |token: &str| token.rsplit('.').next().unwrap().to_owned();
    for secret_value in [
        code.as_str(),
        phone,
        "2025550190",
        &phone_token,
        &signature(&phone_token),
        &access_token,
        &signature(&access_token),
        &secret,
        "wrong-secret-value",
    ] {
        assert!(
            !logs.contains(secret_value),
            "the logs contain {secret_value:?}:\n{logs}"
        );
    }
}
