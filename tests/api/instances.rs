//! Several instances of one deployment on one database: whatever guards security lives in
//! the database, so it holds across instances.

use std::sync::Arc;

use callsign::clock::ManualClock;
use callsign::config::Config;
use serde_json::Value;

use crate::helpers::{assert_error, fresh_database, start};

#[tokio::test]
async fn a_code_sent_by_one_instance_is_answered_at_another() {
    let a = crate::helpers::spawn_app().await;
    let b = a.second_instance().await;
    let client = a.acme().await;

    assert_eq!(a.start_otp(&client, "+12025550180").await.status(), 200);
    let code = a.sms.latest_code("+12025550180");
    let response = b.otp_grant(&client, "+12025550180", &code).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let phone_token = body["access_token"].as_str().unwrap();
    assert_eq!(a.exchange(&client, phone_token, &[]).await.status(), 200);
}

#[tokio::test]
async fn the_resend_cooldown_holds_across_instances() {
    let a = crate::helpers::spawn_app().await;
    let b = a.second_instance().await;
    let client = a.acme().await;

    assert_eq!(a.start_otp(&client, "+12025550181").await.status(), 200);
    let response = b.start_otp(&client, "+12025550181").await;

    assert_error(response, 429, "slow_down").await;
    assert!(b.sms.sent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_split_across_instances_never_exceed_max_attempts() {
    let a = Arc::new(crate::helpers::spawn_app().await);
    let b = Arc::new(a.second_instance().await);
    let client = a.acme().await;
    a.start_otp(&client, "+12025550182").await;
    let code: u32 = a.sms.latest_code("+12025550182").parse().unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=30u32 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        let client = client.clone();
        let guess = format!("{:06}", (code + i) % 1_000_000);
        tasks.spawn(async move {
            app.otp_grant(&client, "+12025550182", &guess)
                .await
                .status()
                .as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    let right = b
        .otp_grant(&client, "+12025550182", &format!("{code:06}"))
        .await;

    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert_error(right, 400, "invalid_grant").await;
    assert_eq!(
        a.scalar("SELECT attempts_left FROM otp_challenges").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_on_an_empty_database_share_one_key_set() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let database_url = fresh_database(&dir_a).await;
    let config = || Config {
        issuer: Some("https://auth.example.test".into()),
        listen: "127.0.0.1:0".into(),
        database_url: database_url.clone(),
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::starting_now());

    let (a, b) = tokio::join!(
        start(config(), dir_a, clock.clone()),
        start(config(), dir_b, clock)
    );

    let (jwks_a, jwks_b) = (a.jwks().await, b.jwks().await);
    assert_eq!(jwks_a, jwks_b);
    assert_eq!(
        jwks_a["keys"].as_array().unwrap().len(),
        3,
        "one key per purpose"
    );
    assert_eq!(a.count("signing_keys").await, 3);
    let text_a = a
        .http
        .get(a.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    let text_b = b
        .http
        .get(b.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    assert_eq!(text_a.unwrap(), text_b.unwrap(), "byte-identical documents");
}
