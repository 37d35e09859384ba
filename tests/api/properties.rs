//! Property tests against the real server: whatever form body, phone number or JWT string
//! a caller sends, the answer is a success or a 4xx with a standard RFC 6749 error body,
//! never a 5xx or a dropped connection.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::Value;

use crate::helpers::{SMS_OTP, TOKEN_EXCHANGE, TestApp, TestClient, spawn_app_with};
use crate::limits::no_caps;

/// Every `error` value the server may answer with.
const CODES: [&str; 9] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "slow_down",
    "temporarily_unavailable",
];
const CASES: u32 = 48;

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    client: TestClient,
}

fn harness() -> Harness {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (app, client) = runtime.block_on(async {
        let app = spawn_app_with(no_caps).await;
        let client = app.acme().await;
        (app, client)
    });
    Harness {
        runtime,
        app,
        client,
    }
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Sends `body` with `content_type` and checks the answer's shape; returns the status.
fn post(harness: &Harness, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    harness.runtime.block_on(async {
        let response = harness
            .app
            .http
            .post(harness.app.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        assert!(status < 500, "{path} answered {status}: {text}");
        if status >= 400 {
            let body: Value = serde_json::from_str(&text).expect("a JSON error body");
            let code = body["error"].as_str().expect("an error code");
            assert!(CODES.contains(&code), "{text}");
            assert!(body["error_description"].is_string(), "{text}");
        }
        status
    })
}

fn form(pairs: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        Just("phone_number".to_owned()),
        Just("grant_type".to_owned()),
        Just("otp".to_owned()),
        Just("subject_token".to_owned()),
        Just("subject_token_type".to_owned()),
        Just("audience".to_owned()),
        Just("scope".to_owned()),
        Just("ui_locales".to_owned()),
        "\\PC{0,12}",
    ]
}

#[test]
fn any_form_or_byte_body_gets_a_standard_answer() {
    let harness = harness();
    let pairs = proptest::collection::vec((key(), "\\PC{0,40}"), 0..6);
    let bodies = prop_oneof![
        pairs.prop_map(|pairs| form(&pairs)),
        proptest::collection::vec(any::<u8>(), 0..300),
    ];
    let paths = prop_oneof![Just("/otp/start"), Just("/token")];
    let types = prop_oneof![
        Just("application/x-www-form-urlencoded"),
        Just("application/json"),
        Just("text/plain"),
    ];

    runner()
        .run(&(paths, types, bodies), |(path, content_type, body)| {
            post(&harness, path, content_type, body);
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_phone_number_gets_a_code_or_a_standard_error() {
    let harness = harness();
    let numbers = prop_oneof!["[+0-9 ().\\-/]{0,24}", "\\+[0-9]{1,16}", "\\PC{0,30}",];

    runner()
        .run(&numbers, |number| {
            let mut pairs = harness.client.auth();
            pairs.push(("phone_number", number.clone()));
            let start = form(&owned(&pairs));
            let status = post(
                &harness,
                "/otp/start",
                "application/x-www-form-urlencoded",
                start,
            );
            prop_assert!(matches!(status, 200 | 400 | 429), "{number:?}: {status}");
            pairs.push(("grant_type", SMS_OTP.into()));
            pairs.push(("otp", "123456".into()));
            let grant = form(&owned(&pairs));
            let status = post(
                &harness,
                "/token",
                "application/x-www-form-urlencoded",
                grant,
            );
            prop_assert_eq!(status, 400);
            Ok(())
        })
        .unwrap();
}

fn owned(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A JWT-shaped string: a header with a chosen or random `alg`, `typ` and `kid`, any
/// payload, any signature.
fn jwt() -> impl Strategy<Value = String> {
    let alg = prop_oneof![
        Just("none".to_owned()),
        Just("HS256".to_owned()),
        Just("ES256".to_owned()),
        Just("RS256".to_owned()),
        "\\PC{0,8}",
    ];
    let typ = prop_oneof![
        Just("phone-token+jwt".to_owned()),
        Just("at+jwt".to_owned()),
        "\\PC{0,8}"
    ];
    let header = (alg, typ, "\\PC{0,12}").prop_map(|(alg, typ, kid)| {
        serde_json::json!({"alg": alg, "typ": typ, "kid": kid}).to_string()
    });
    let part = prop_oneof![
        "\\PC{0,60}".prop_map(|text| URL_SAFE_NO_PAD.encode(text)),
        "[A-Za-z0-9_.=-]{0,60}",
    ];
    prop_oneof![
        (header, part.clone(), part.clone())
            .prop_map(|(h, p, s)| format!("{}.{p}.{s}", URL_SAFE_NO_PAD.encode(h))),
        "\\PC{0,80}",
    ]
}

#[test]
fn any_subject_token_is_refused_as_an_invalid_request() {
    let harness = harness();

    runner()
        .run(&jwt(), |token| {
            let mut pairs = harness.client.auth();
            pairs.push(("grant_type", TOKEN_EXCHANGE.into()));
            pairs.push(("subject_token", token.clone()));
            pairs.push((
                "subject_token_type",
                crate::helpers::PHONE_TOKEN_TYPE.into(),
            ));
            let body = form(&owned(&pairs));
            let status = post(
                &harness,
                "/token",
                "application/x-www-form-urlencoded",
                body,
            );
            prop_assert_eq!(status, 400, "{:?}", token);
            Ok(())
        })
        .unwrap();
}
