//! `POST /otp/start`.

use callsign::registry::NewClient;
use serde_json::Value;

use crate::helpers::{ORDERS, assert_error, peek, spawn_app, spawn_app_with};

#[tokio::test]
async fn start_answers_the_lifetimes_and_sends_one_code() {
    let app = spawn_app().await;
    let client = app.acme().await;

    let response = app.start_otp(&client, "+12025550100").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["resend_in"], 30);
    let sent = app.sms.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "+12025550100");
    assert_eq!(app.sms.latest_code("+12025550100").len(), 6);
    assert_eq!(app.count("otp_challenges").await, 1);
}

#[tokio::test]
async fn the_answer_is_the_same_for_known_and_unknown_phones() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.phone_token(&client, "+12025550104").await;
    app.clock.advance(60);

    let known = app.start_otp(&client, "+12025550104").await;
    let unknown = app.start_otp(&client, "+12025550105").await;

    assert_eq!(known.status(), unknown.status());
    let known_headers: Vec<_> = known.headers().keys().cloned().collect();
    let unknown_headers: Vec<_> = unknown.headers().keys().cloned().collect();
    assert_eq!(known_headers, unknown_headers);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
}

#[tokio::test]
async fn spellings_of_a_number_reach_one_canonical_destination() {
    let app = spawn_app().await;
    let client = app.acme().await;

    let response = app.start_otp(&client, "+1 (202) 555-0108").await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.sms.sent()[0].0, "+12025550108");

    let code = app.sms.latest_code("+12025550108");
    let response = app.otp_grant(&client, "+12025550108", &code).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let (_, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(claims["phone_number"], "+12025550108");

    for spelling in ["+1.202.555.0109", "+1 202-555-0109"] {
        app.clock.advance(60);
        assert_eq!(app.start_otp(&client, "+12025550109").await.status(), 200);
        let code = app.sms.latest_code("+12025550109");
        assert_eq!(
            app.otp_grant(&client, spelling, &code).await.status(),
            200,
            "{spelling}"
        );
    }
}

#[tokio::test]
async fn a_code_never_logs_in_a_neighbouring_number() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550110").await;
    let code = app.sms.latest_code("+12025550110");

    let response = app.otp_grant(&client, "+12025550111", &code).await;

    assert_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_default_region_never_rewrites_international_numbers() {
    let app = spawn_app_with(|c| c.phone.default_region = Some("US".into())).await;
    let client = app.acme().await;
    let numbers = [
        ("+4915123456789", "+4915123456789"),
        ("+44 7911 123456", "+447911123456"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+61 491 570 156", "+61491570156"),
    ];

    for (typed, e164) in numbers {
        assert_eq!(app.start_otp(&client, typed).await.status(), 200, "{typed}");
        assert_eq!(app.sms.sent().last().unwrap().0, e164);
        let code = app.sms.latest_code(e164);
        let response = app.otp_grant(&client, typed, &code).await;
        let body: Value = response.json().await.unwrap();
        let (_, claims) = peek(body["access_token"].as_str().unwrap());
        assert_eq!(claims["phone_number"], e164);
    }

    // A national number is read in the default region.
    assert_eq!(app.start_otp(&client, "(202) 555-0130").await.status(), 200);
    assert_eq!(app.sms.sent().last().unwrap().0, "+12025550130");
}

#[tokio::test]
async fn numbers_that_cannot_exist_are_invalid_requests() {
    let app = spawn_app().await;
    let client = app.acme().await;

    for bad in [
        "+1 555 0100",
        "2025550100",
        "not a phone",
        "+1202555010١",
        "'; DROP TABLE phones",
    ] {
        let body = assert_error(app.start_otp(&client, bad).await, 400, "invalid_request").await;
        assert_eq!(
            body["error_description"],
            "phone_number is not a valid phone number"
        );
    }
    assert!(app.sms.sent().is_empty());
    assert_eq!(app.count("otp_challenges").await, 0);
}

#[tokio::test]
async fn unknown_and_unauthorised_clients_get_no_sms() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let machine = app
        .client(NewClient {
            name: "orders-svc".into(),
            grants: vec!["client_credentials".into()],
            audiences: vec![ORDERS.into()],
            ..NewClient::default()
        })
        .await;
    let nobody = crate::helpers::TestClient {
        id: "no-such-client".into(),
        secret: None,
    };
    let wrong_secret = crate::helpers::TestClient {
        id: acme.id.clone(),
        secret: Some("x".into()),
    };
    let no_secret = crate::helpers::TestClient {
        id: acme.id.clone(),
        secret: None,
    };

    assert_error(
        app.start_otp(&nobody, "+12025550103").await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        app.start_otp(&wrong_secret, "+12025550103").await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        app.start_otp(&no_secret, "+12025550103").await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        app.start_otp(&machine, "+12025550103").await,
        400,
        "unauthorized_client",
    )
    .await;

    assert!(app.sms.sent().is_empty());
    assert_eq!(app.count("otp_challenges").await, 0);
}

#[tokio::test]
async fn a_resend_inside_the_cooldown_is_refused_with_retry_after() {
    let app = spawn_app().await;
    let client = app.acme().await;
    app.start_otp(&client, "+12025550102").await;
    let first_code = app.sms.latest_code("+12025550102");
    app.clock.advance(10);

    let response = app.start_otp(&client, "+12025550102").await;

    assert_eq!(response.headers()["retry-after"], "20");
    assert_error(response, 429, "slow_down").await;
    assert_eq!(app.sms.count_to("+12025550102"), 1);

    // After the cooldown a new code replaces the old one.
    app.clock.advance(20);
    assert_eq!(app.start_otp(&client, "+12025550102").await.status(), 200);
    assert_eq!(app.sms.count_to("+12025550102"), 2);
    let second_code = app.sms.latest_code("+12025550102");
    if first_code != second_code {
        let old = app.otp_grant(&client, "+12025550102", &first_code).await;
        assert_error(old, 400, "invalid_grant").await;
    }
    let new = app.otp_grant(&client, "+12025550102", &second_code).await;
    assert_eq!(new.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_starts_for_a_new_phone_send_one_code_that_works() {
    let app = std::sync::Arc::new(spawn_app().await);
    let client = app.acme().await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (app, client) = (app.clone(), client.clone());
        tasks.spawn(async move {
            app.start_otp(&client, "+12025550107")
                .await
                .status()
                .as_u16()
        });
    }
    let statuses: Vec<u16> = tasks.join_all().await;

    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1);
    assert_eq!(app.sms.count_to("+12025550107"), 1);
    assert_eq!(app.count("otp_challenges").await, 1);
    let code = app.sms.latest_code("+12025550107");
    let first = app.otp_grant(&client, "+12025550107", &code).await;
    let first: Value = first.json().await.unwrap();

    // A later login names the same phone record.
    app.clock.advance(60);
    let second = app.phone_token(&client, "+12025550107").await;
    let (_, first_claims) = peek(first["access_token"].as_str().unwrap());
    let (_, second_claims) = peek(&second);
    assert_eq!(first_claims["sub"], second_claims["sub"]);
    assert_eq!(app.count("phones").await, 1);
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn test_numbers_get_their_fixed_code_and_no_sms() {
    let app = spawn_app_with(|c| {
        c.sms
            .test_numbers
            .insert("+12025550199".into(), "424242".into());
    })
    .await;
    let client = app.acme().await;

    assert_eq!(
        app.start_otp(&client, "+1 202 555 0199").await.status(),
        200
    );
    assert!(app.sms.sent().is_empty());
    let wrong = app.otp_grant(&client, "+12025550199", "000000").await;
    assert_error(wrong, 400, "invalid_grant").await;
    let right = app.otp_grant(&client, "+12025550199", "424242").await;
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn start_takes_json_and_refuses_other_bodies_and_methods() {
    let app = spawn_app().await;
    let client = app.acme().await;
    let json = serde_json::json!({
        "client_id": client.id, "client_secret": client.secret, "phone_number": "+12025550140",
    });

    let response = app
        .http
        .post(app.url("/otp/start"))
        .json(&json)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let text = app
        .http
        .post(app.url("/otp/start"))
        .body("phone_number=+1")
        .send()
        .await
        .unwrap();
    assert_error(text, 400, "invalid_request").await;
    let typed = app
        .http
        .post(app.url("/otp/start"))
        .header("content-type", "application/json")
        .body(r#"{"client_id": 7}"#)
        .send()
        .await
        .unwrap();
    assert_error(typed, 400, "invalid_request").await;
    let broken = app
        .http
        .post(app.url("/otp/start"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(broken, 400, "invalid_request").await;
    let get = app.get("/otp/start").await;
    assert_eq!(get.headers()["allow"], "POST");
    assert_error(get, 405, "invalid_request").await;
    let missing = app.post_form("/otp/start", &client.auth()).await;
    assert_error(missing, 400, "invalid_request").await;
}

#[tokio::test]
async fn client_secrets_in_the_query_string_are_refused() {
    let app = spawn_app().await;
    let client = app.acme().await;
    let url = format!("{}?client_secret=x", app.url("/otp/start"));
    let mut pairs = client.auth();
    pairs.push(("phone_number", "+12025550141".into()));

    let response = app.http.post(url).form(&pairs).send().await.unwrap();

    assert_error(response, 400, "invalid_request").await;
    assert!(app.sms.sent().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_a_server_error() {
    let app = spawn_app().await;
    let client = app.acme().await;
    let mut pairs = client.auth();
    pairs.push(("phone_number", "1".repeat(100_000)));

    let response = app.post_form("/otp/start", &pairs).await;

    assert_error(response, 413, "invalid_request").await;
}

#[tokio::test]
async fn a_json_member_sent_twice_is_refused_like_a_repeated_parameter() {
    let app = spawn_app().await;
    let client = app.public_client(&[], &[]).await;
    let body = format!(
        r#"{{"client_id":"{}","phone_number":"+12025550171","phone_number":"+12025550172"}}"#,
        client.id
    );

    let response = app
        .http
        .post(app.url("/otp/start"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_error(response, 400, "invalid_request").await;
    assert!(app.sms.sent().is_empty());
}

#[tokio::test]
async fn with_sign_up_closed_known_and_unknown_phones_still_look_alike() {
    let app = spawn_app_with(|c| c.signup.create_users = false).await;
    let client = app.acme().await;
    app.phone_token(&client, "+12025550104").await;
    app.clock.advance(60);

    let known = app.start_otp(&client, "+12025550104").await;
    let unknown = app.start_otp(&client, "+12025550105").await;

    assert_eq!(known.status(), 200);
    assert_eq!(known.status(), unknown.status());
    let names = |r: &reqwest::Response| r.headers().keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&known), names(&unknown));
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let mut answers = Vec::new();
    for phone in ["+12025550104", "+12025550105", "+12025550106"] {
        let response = app.otp_grant(&client, phone, "000000").await;
        answers.push(assert_error(response, 400, "invalid_grant").await);
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_starts_on_two_instances_leave_one_working_code() {
    let first = std::sync::Arc::new(spawn_app().await);
    let second = std::sync::Arc::new(first.second_instance().await);
    let client = first.acme().await;

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..6 {
        let app = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let client = client.clone();
        tasks.spawn(async move {
            let response = app.start_otp(&client, "+12025550107").await;
            (response.status().as_u16(), response.text().await.unwrap())
        });
    }
    let answers = tasks.join_all().await;

    assert!(
        answers
            .iter()
            .all(|(s, body)| (*s == 200 || *s == 429) && !body.contains("SQL")),
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 1);
    let sinks = [&first.sms, &second.sms];
    let sent: usize = sinks.iter().map(|s| s.count_to("+12025550107")).sum();
    assert_eq!(sent, 1);
    let sink = sinks
        .iter()
        .find(|s| s.count_to("+12025550107") == 1)
        .unwrap();
    let code = sink.latest_code("+12025550107");
    let granted = second.otp_grant(&client, "+12025550107", &code).await;
    assert_eq!(granted.status(), 200);
    assert_eq!(first.count("otp_challenges").await, 1);
    assert_eq!(first.count("phones").await, 1);
    assert_eq!(first.count("users").await, 0);
}
