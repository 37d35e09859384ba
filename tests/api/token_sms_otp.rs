//! The SMS OTP grant at `POST /token`.

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use crate::helpers::{SMS_OTP, TestClient, assert_error, peek, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_right_code_gives_a_phone_token_with_exactly_the_contract_claims() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550150").await;
    let code = app.sms.latest_code("+12025550150");

    let response = app.otp_grant(&client, "+12025550150", &code).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["issued_token_type"],
        "urn:callsign:params:oauth:token-type:phone_token"
    );
    assert_eq!(body["expires_in"], 300);
    let (header, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "phone-token+jwt");
    assert_eq!(header["alg"], "ES256");
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "amr",
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "phone_number",
            "phone_number_verified",
            "sub"
        ]
    );
    assert_eq!(claims["iss"], app.issuer);
    assert_eq!(claims["aud"], serde_json::json!([app.issuer]));
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["phone_number"], "+12025550150");
    assert_eq!(claims["phone_number_verified"], true);
    assert_eq!(claims["amr"], serde_json::json!(["sms", "otp"]));
    assert_eq!(claims["iat"], app.now());
    assert_eq!(claims["exp"], app.now() + 300);
    assert!(claims["sub"].as_str().unwrap().starts_with("ph_"));
    assert_eq!(app.count("phones").await, 1);
}

#[tokio::test]
async fn configured_audiences_join_the_issuer_in_the_phone_token() {
    let app = spawn_app_with(|c| {
        c.phone_token.audiences = vec!["https://account.api.example.test".into()];
        c.phone_token.ttl_seconds = 120;
    })
    .await;
    let client = app.acme().await;

    let token = app.phone_token(&client, "+12025550151").await;

    let (_, claims) = peek(&token);
    assert_eq!(
        claims["aud"],
        serde_json::json!([app.issuer, "https://account.api.example.test"])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}

#[tokio::test]
async fn the_code_is_dead_after_max_attempts_wrong_guesses() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550101").await;
    let code = app.sms.latest_code("+12025550101");
    let wrong = |i: u32| format!("{:06}", (code.parse::<u32>().unwrap() + i) % 1_000_000);

    for i in 1..=5 {
        let response = app.otp_grant(&client, "+12025550101", &wrong(i)).await;
        assert_error(response, 400, "invalid_grant").await;
    }
    let response = app.otp_grant(&client, "+12025550101", &code).await;

    assert_error(response, 400, "invalid_grant").await;
    assert_eq!(app.count("phones").await, 0);
}

#[tokio::test]
async fn a_code_works_once() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550152").await;
    let code = app.sms.latest_code("+12025550152");

    assert_eq!(
        app.otp_grant(&client, "+12025550152", &code).await.status(),
        200
    );
    let again = app.otp_grant(&client, "+12025550152", &code).await;

    assert_error(again, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550123").await;
    let code = app.sms.latest_code("+12025550123");
    app.clock.advance(300);

    let response = app.otp_grant(&client, "+12025550123", &code).await;

    assert_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_still_works_just_before_it_expires() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550122").await;
    let code = app.sms.latest_code("+12025550122");
    app.clock.advance(299);

    assert_eq!(
        app.otp_grant(&client, "+12025550122", &code).await.status(),
        200
    );
}

#[tokio::test]
async fn a_challenge_belongs_to_the_client_that_started_it() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let other = app.public_client(&[crate::helpers::ORDERS], &[]).await;
    app.start_otp(&acme, "+12025550153").await;
    let code = app.sms.latest_code("+12025550153");

    let response = app.otp_grant(&other, "+12025550153", &code).await;

    assert_error(response, 400, "invalid_grant").await;
    assert_eq!(
        app.otp_grant(&acme, "+12025550153", &code).await.status(),
        200
    );
}

#[tokio::test]
async fn wrong_unknown_and_never_started_phones_get_the_same_answer() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.phone_token(&client, "+12025550104").await;
    app.clock.advance(60);
    app.start_otp(&client, "+12025550104").await;
    app.start_otp(&client, "+12025550105").await;
    let guess = |phone: &str| {
        let code = app.sms.latest_code(phone);
        if code == "000000" {
            "000001".to_owned()
        } else {
            "000000".to_owned()
        }
    };

    let mut bodies = Vec::new();
    for (phone, code) in [
        ("+12025550104", guess("+12025550104")),
        ("+12025550105", guess("+12025550105")),
        ("+12025550106", "000000".to_owned()),
    ] {
        let response = app.otp_grant(&client, phone, &code).await;
        assert_eq!(response.status(), 400);
        bodies.push(response.text().await.unwrap());
    }

    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_right_codes_give_exactly_one_phone_token() {
    let app = Arc::new(spawn_app_with(|c| c.otp.max_attempts = 100).await);
    let client = app.acme().await;
    app.start_otp(&client, "+12025550160").await;
    let code = app.sms.latest_code("+12025550160");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (app, client, code) = (app.clone(), client.clone(), code.clone());
        tasks.spawn(async move {
            app.otp_grant(&client, "+12025550160", &code)
                .await
                .status()
                .as_u16()
        });
    }
    let statuses = tasks.join_all().await;

    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        63,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_wrong_guesses_never_exceed_max_attempts() {
    let app = Arc::new(spawn_app().await);
    let client = app.acme().await;
    app.start_otp(&client, "+12025550161").await;
    let code: u32 = app.sms.latest_code("+12025550161").parse().unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=30 {
        let (app, client) = (app.clone(), client.clone());
        let guess = format!("{:06}", (code + i) % 1_000_000);
        tasks.spawn(async move {
            app.otp_grant(&client, "+12025550161", &guess)
                .await
                .status()
                .as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    let right = app
        .otp_grant(&client, "+12025550161", &format!("{code:06}"))
        .await;

    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert_error(right, 400, "invalid_grant").await;
    let left = app.scalar("SELECT attempts_left FROM otp_challenges").await;
    assert_eq!(left, 0, "exactly max_attempts guesses were counted");
}

#[tokio::test]
async fn malformed_grant_requests_are_invalid_requests_and_change_nothing() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550162").await;
    let before = app.snapshot().await;
    let base = |extra: &[(&'static str, &str)]| {
        let mut pairs = client.auth();
        pairs.push(("grant_type", SMS_OTP.to_owned()));
        pairs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        pairs
    };

    let cases = [
        base(&[("phone_number", "+12025550162")]),
        base(&[("otp", "123456")]),
        base(&[("phone_number", "+12025550162"), ("otp", "")]),
        base(&[("phone_number", "+12025550162"), ("otp", "1"), ("otp", "2")]),
        base(&[("phone_number", "garbage"), ("otp", "123456")]),
    ];
    for pairs in cases {
        let response = app.post_form("/token", &pairs).await;
        assert_error(response, 400, "invalid_request").await;
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let app = spawn_app().await;
    let client = app.acme().await;
    for grant in [
        "password",
        "urn:callsign:params:oauth:grant-type:sms",
        "implicit",
    ] {
        let mut pairs = client.auth();
        pairs.push(("grant_type", grant.to_owned()));
        let response = app.post_form("/token", &pairs).await;
        assert_error(response, 400, "unsupported_grant_type").await;
    }
}

#[tokio::test]
async fn http_basic_authenticates_and_a_bad_basic_gets_a_challenge() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550163").await;
    let code = app.sms.latest_code("+12025550163");
    let form = [
        ("grant_type", SMS_OTP),
        ("phone_number", "+12025550163"),
        ("otp", code.as_str()),
    ];
    let secret = client.secret.clone().unwrap();

    let bad = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some("not-the-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_error(bad, 401, "invalid_client").await;

    let good = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some(&secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
}

#[tokio::test]
async fn a_confidential_client_cannot_act_as_a_public_one() {
    let app = spawn_app().await;
    let client = app.acme().await;
    let public_style = TestClient {
        id: client.id.clone(),
        secret: None,
    };
    app.start_otp(&client, "+12025550164").await;
    let code = app.sms.latest_code("+12025550164");

    let response = app.otp_grant(&public_style, "+12025550164", &code).await;

    let response_body = assert_error(response, 401, "invalid_client").await;
    assert!(response_body.get("access_token").is_none());
}

#[tokio::test]
async fn get_and_wrong_content_types_at_the_token_endpoint_are_refused() {
    let app = spawn_app().await;
    let get = app.get("/token").await;
    assert_error(get, 405, "invalid_request").await;
    let json = app
        .http
        .post(app.url("/token"))
        .json(&serde_json::json!({"grant_type": SMS_OTP}))
        .send()
        .await
        .unwrap();
    assert_error(json, 400, "invalid_request").await;
    let weird = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00, b'&', b'%', b'z'])
        .send()
        .await
        .unwrap();
    assert_error(weird, 400, "invalid_request").await;
    let encoded = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', 0x80]);
    let basic = app
        .http
        .post(app.url("/token"))
        .header("authorization", format!("Basic {encoded}"))
        .form(&[("grant_type", SMS_OTP)])
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "invalid_client").await;
}
