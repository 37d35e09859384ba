//! The Twilio and webhook senders against a local mock of the provider's API: success,
//! a refused number, a provider failure and a timeout; a failed delivery leaves no usable
//! code and a retried start sends no second one straight away.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callsign::config::{Config, Secret, SmsProvider, TwilioConfig, WebhookConfig};
use serde_json::Value;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{TestApp, assert_error, spawn_app_delivering};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-value";
const MESSAGES: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
const WEBHOOK_KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn twilio(server: &MockServer, c: &mut Config) {
    c.sms.provider = SmsProvider::Twilio;
    c.sms.twilio = Some(TwilioConfig {
        account_sid: SID.into(),
        auth_token: Secret::new(TOKEN),
        from: Some("+12025550000".into()),
        messaging_service_sid: None,
        base_url: server.uri(),
        timeout_seconds: 1,
    });
}

fn webhook(server: &MockServer, c: &mut Config) {
    c.sms.provider = SmsProvider::Webhook;
    c.sms.webhook = Some(WebhookConfig {
        url: format!("{}/sms", server.uri()),
        secret: Secret::new(format!("whsec_{WEBHOOK_KEY}")),
        timeout_seconds: 1,
    });
}

fn form(request: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn field(request: &Request, name: &str) -> String {
    form(request)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no {name} in the request"))
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .expect("a code in the message")
        .to_owned()
}

async fn twilio_app(server: &MockServer, status: u16) -> TestApp {
    let body = serde_json::json!({"code": 21211, "message": "The 'To' number is not valid"});
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
    spawn_app_delivering(|c| twilio(server, c)).await
}

#[tokio::test]
async fn twilio_receives_the_number_the_text_and_the_account_credentials() {
    let server = MockServer::start().await;
    let basic = format!("Basic {}", STANDARD.encode(format!("{SID}:{TOKEN}")));
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", basic.as_str()))
        .and(body_string_contains("To=%2B12025550100"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM1"})))
        .expect(1)
        .mount(&server)
        .await;
    let app = spawn_app_delivering(|c| twilio(&server, c)).await;
    let acme = app.acme().await;

    let response = app.start_otp(&acme, "+12025550100").await;

    assert_eq!(response.status(), 200);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(field(&requests[0], "From"), "+12025550000");
    let text = field(&requests[0], "Body");
    assert!(text.starts_with("Your callsign code is "), "{text}");
    let granted = app.otp_grant(&acme, "+12025550100", &code_in(&text)).await;
    assert_eq!(granted.status(), 200);
}

#[tokio::test]
async fn a_messaging_service_and_a_localised_webotp_text_are_sent_when_configured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let app = spawn_app_delivering(|c| {
        twilio(&server, c);
        let twilio = c.sms.twilio.as_mut().unwrap();
        twilio.from = None;
        twilio.messaging_service_sid = Some("MG0123".into());
        c.sms.app_name = "Acme".into();
        c.sms.web_otp_host = Some("auth.example.test".into());
        c.sms.templates.insert(
            "fr".into(),
            "Votre code {app} : {code} ({minutes} min)".into(),
        );
    })
    .await;
    let acme = app.acme().await;
    let mut pairs = acme.auth();
    pairs.push(("phone_number", "+33612345678".into()));
    pairs.push(("ui_locales", "fr-FR en".into()));

    let response = app.post_form("/otp/start", &pairs).await;

    assert_eq!(response.status(), 200);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(field(&requests[0], "MessagingServiceSid"), "MG0123");
    assert!(form(&requests[0]).iter().all(|(key, _)| key != "From"));
    let text = field(&requests[0], "Body");
    let code = code_in(&text);
    assert_eq!(
        text,
        format!("Votre code Acme : {code} (5 min)\n\n@auth.example.test #{code}")
    );
}

#[tokio::test]
async fn a_number_twilio_refuses_leaves_no_usable_code_and_no_second_send() {
    let server = MockServer::start().await;
    let app = twilio_app(&server, 400).await;
    let acme = app.acme().await;

    let response = app.start_otp(&acme, "+12025550101").await;

    assert_eq!(response.headers()["retry-after"], "30");
    assert_error(response, 503, "temporarily_unavailable").await;
    let requests = server.received_requests().await.unwrap();
    let code = code_in(&field(&requests[0], "Body"));
    let late = app.otp_grant(&acme, "+12025550101", &code).await;
    assert_error(late, 400, "invalid_grant").await;
    // A retry inside the resend interval sends nothing more.
    let retried = app.start_otp(&acme, "+12025550101").await;
    assert_error(retried, 429, "slow_down").await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    app.clock.advance(30);
    assert_eq!(app.start_otp(&acme, "+12025550101").await.status(), 503);
}

#[tokio::test]
async fn a_twilio_server_error_is_temporarily_unavailable() {
    let server = MockServer::start().await;
    let app = twilio_app(&server, 500).await;
    let acme = app.acme().await;

    let response = app.start_otp(&acme, "+12025550101").await;

    assert_error(response, 503, "temporarily_unavailable").await;
    let metrics = app.get("/metrics").await;
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"callsign_sms_delivery_failures_total{provider="twilio"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_temporarily_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let app = spawn_app_delivering(|c| twilio(&server, c)).await;
    let acme = app.acme().await;

    let started = std::time::Instant::now();
    let response = app.start_otp(&acme, "+12025550101").await;

    assert_error(response, 503, "temporarily_unavailable").await;
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn webhook_deliveries_carry_a_standard_webhooks_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let app = spawn_app_delivering(|c| webhook(&server, c)).await;
    let acme = app.acme().await;

    let response = app.start_otp(&acme, "+12025550100").await;

    assert_eq!(response.status(), 200);
    let request = &server.received_requests().await.unwrap()[0];
    let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    assert!(id.starts_with("msg_"));
    assert_eq!(timestamp, app.now().to_string());
    let key = hmac::Key::new(hmac::HMAC_SHA256, &STANDARD.decode(WEBHOOK_KEY).unwrap());
    let signed = [
        id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        &request.body,
    ]
    .concat();
    let expected = format!("v1,{}", STANDARD.encode(hmac::sign(&key, &signed)));
    assert_eq!(header("webhook-signature"), expected);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "sms.send");
    assert_eq!(body["data"]["to"], "+12025550100");
    let code = code_in(body["data"]["text"].as_str().unwrap());
    let granted = app.otp_grant(&acme, "+12025550100", &code).await;
    assert_eq!(granted.status(), 200);
}

#[tokio::test]
async fn a_refusing_webhook_is_temporarily_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422))
        .mount(&server)
        .await;
    let app = spawn_app_delivering(|c| webhook(&server, c)).await;
    let acme = app.acme().await;

    let response = app.start_otp(&acme, "+12025550100").await;

    assert_error(response, 503, "temporarily_unavailable").await;
}

#[test]
fn provider_secrets_never_show_in_debug_output() {
    let mut config = Config::default();
    config.sms.provider = SmsProvider::Twilio;
    config.sms.twilio = Some(TwilioConfig {
        account_sid: SID.into(),
        auth_token: Secret::new(TOKEN),
        from: Some("+12025550000".into()),
        messaging_service_sid: None,
        base_url: "http://127.0.0.1:9".into(),
        timeout_seconds: 5,
    });
    config.sms.webhook = Some(WebhookConfig {
        url: "http://127.0.0.1:9/sms".into(),
        secret: Secret::new(format!("whsec_{WEBHOOK_KEY}")),
        timeout_seconds: 5,
    });

    let settings = config.validate().unwrap();

    for text in [format!("{config:?}"), format!("{settings:?}")] {
        assert!(
            !text.contains(TOKEN) && !text.contains(WEBHOOK_KEY),
            "{text}"
        );
    }
}
