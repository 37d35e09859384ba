//! Users and phones through the admin API: creating, finding, disabling, and linking,
//! unlinking and moving numbers with their history.

use serde_json::{Value, json};

use crate::admin::{admin, call, call_if, etag};
use crate::authorize::{code_for, redeem, web_client};
use crate::helpers::{TestApp, assert_error, introspect, peek, refresh, spawn_app};

async fn create_user(app: &TestApp, token: &str, phone: Option<&str>) -> Value {
    let body = match phone {
        Some(phone) => json!({"phone_number": phone}),
        None => json!({}),
    };
    let (status, user, _) = call(app, "POST", "/admin/v1/users", Some(token), Some(body)).await;
    assert_eq!(status, 201, "{user}");
    user
}

fn numbers(user: &Value) -> Vec<&str> {
    user["phones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phone_number"].as_str().unwrap())
        .collect()
}

fn ids(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_admin_creates_finds_and_reads_users() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;

    let invited = create_user(&app, &token, None).await;
    app.clock.advance(1);
    let holder = create_user(&app, &token, Some("+1 (202) 555-0170")).await;

    assert!(invited["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(invited["status"], "active");
    assert!(numbers(&invited).is_empty());
    assert_eq!(numbers(&holder), ["+12025550170"]);
    assert_eq!(holder["phones"][0]["verified_at"], Value::Null);
    assert_eq!(holder["phone_history"][0]["unlinked_at"], Value::Null);
    let holder_id = holder["id"].as_str().unwrap();
    for search in ["%2B12025550170", "555017", "202-555", "0170"] {
        let path = format!("/admin/v1/users?phone={search}");
        let (status, found, _) = call(&app, "GET", &path, Some(&token), None).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&found), [holder_id], "{search}");
    }
    let (_, all, _) = call(&app, "GET", "/admin/v1/users", Some(&token), None).await;
    assert_eq!(ids(&all), [invited["id"].as_str().unwrap(), holder_id]);
    let (_, second, _) = call(
        &app,
        "GET",
        "/admin/v1/users?limit=1&offset=1",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(ids(&second), [holder_id]);
    let (status, read, headers) = call(
        &app,
        "GET",
        &format!("/admin/v1/users/{holder_id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read, holder);
    assert!(etag(&headers).starts_with('"'));
}

#[tokio::test]
async fn bad_user_input_is_named_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let holder = create_user(&app, &token, Some("+12025550171")).await;
    let before = app.snapshot().await;

    let cases = [
        (json!({"phone_number": "not a number"}), 400, "phone_number"),
        (json!({"phone_number": "+1 202 555"}), 400, "phone_number"),
        (json!({"phone": "+12025550172"}), 400, "body"),
    ];
    for (input, status, field) in cases {
        let (got, body, _) = call(
            &app,
            "POST",
            "/admin/v1/users",
            Some(&token),
            Some(input.clone()),
        )
        .await;
        assert_eq!(
            (got, body["field"].as_str()),
            (status, Some(field)),
            "{input}"
        );
    }
    let (status, body, _) = call(
        &app,
        "POST",
        "/admin/v1/users",
        Some(&token),
        Some(json!({"phone_number": "+12025550171"})),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(holder["id"].as_str().unwrap())
    );
    for query in ["phone=abc", "phone=%2B1", "limit=0", "offset=-1"] {
        let path = format!("/admin/v1/users?{query}");
        let (status, _, _) = call(&app, "GET", &path, Some(&token), None).await;
        assert_eq!(status, 400, "{query}");
    }
    let (status, _, _) = call(
        &app,
        "GET",
        "/admin/v1/users/usr_nobody",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body, _) = call(&app, "GET", "/admin/v1/users/%FF", Some(&token), None).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("path")),
        "JSON, not plain text"
    );
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn phones_are_linked_unlinked_and_moved_with_their_history() {
    let app = spawn_app().await;
    let (admin_client, token) = admin(&app).await;
    let alice = create_user(&app, &token, None).await;
    let bob = create_user(&app, &token, None).await;
    let (alice, bob) = (alice["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    let phones = |id: &str| format!("/admin/v1/users/{id}/phones");

    let (status, linked, _) = call(
        &app,
        "POST",
        &phones(alice),
        Some(&token),
        Some(json!({"phone_number": "+1 202 555 0175"})),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(numbers(&linked), ["+12025550175"]);
    let (status, _, _) = call(
        &app,
        "POST",
        &phones(bob),
        Some(&token),
        Some(json!({"phone_number": "+12025550175"})),
    )
    .await;
    assert_eq!(status, 409, "someone else's number is not taken silently");

    let (status, moved, _) = call(
        &app,
        "POST",
        "/admin/v1/phones/move",
        Some(&token),
        Some(json!({"phone_number": "+12025550175", "from": alice, "to": bob})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["id"], bob);
    assert_eq!(numbers(&moved), ["+12025550175"]);
    let history = moved["phone_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["user_id"], alice);
    assert!(history[0]["unlinked_at"].is_i64());
    assert_eq!(history[1]["user_id"], bob);
    assert!(history[1]["unlinked_at"].is_null());
    let (_, alice_now, _) = call(
        &app,
        "GET",
        &format!("/admin/v1/users/{alice}"),
        Some(&token),
        None,
    )
    .await;
    assert!(numbers(&alice_now).is_empty());
    assert_eq!(alice_now["phone_history"].as_array().unwrap().len(), 1);
    let (status, _, _) = call(
        &app,
        "POST",
        "/admin/v1/phones/move",
        Some(&token),
        Some(json!({"phone_number": "+12025550175", "from": alice, "to": bob})),
    )
    .await;
    assert_eq!(status, 409, "a move from someone who no longer holds it");

    let (status, unlinked, _) = call(
        &app,
        "DELETE",
        &format!("{}/%2B12025550175", phones(bob)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(numbers(&unlinked).is_empty());
    let history = unlinked["phone_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "bob's own link, now closed");
    assert!(history[0]["unlinked_at"].is_i64());
    let (status, _, _) = call(
        &app,
        "DELETE",
        &format!("{}/%2B12025550175", phones(bob)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (_, audit, _) = call(
        &app,
        "GET",
        "/admin/v1/audit?action=user.",
        Some(&token),
        None,
    )
    .await;
    let events = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.phone_unlinked",
            "user.phone_moved",
            "user.phone_moved",
            "user.phone_linked",
            "user.created",
            "user.created"
        ]
    );
    for event in events {
        assert_eq!(event["actor"], format!("client:{}", admin_client.id));
        assert_eq!(event["address"], "127.0.0.1");
        assert!(!event.to_string().contains("12025550175"), "{event}");
    }
}

#[tokio::test]
async fn a_phone_an_admin_linked_leads_its_holder_to_that_user() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let acme = app.acme().await;
    let user = create_user(&app, &token, Some("+12025550173")).await;

    let phone_token = app.phone_token(&acme, "+12025550173").await;
    let body: Value = app
        .exchange(&acme, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();

    let (_, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], user["id"]);
    let path = format!("/admin/v1/users/{}", user["id"].as_str().unwrap());
    let (_, read, _) = call(&app, "GET", &path, Some(&token), None).await;
    assert!(read["phones"][0]["verified_at"].is_i64(), "{read}");
}

async fn set_status(app: &TestApp, token: &str, user_id: &str, status: &str) {
    let path = format!("/admin/v1/users/{user_id}");
    let (_, _, headers) = call(app, "GET", &path, Some(token), None).await;
    let tag = etag(&headers);
    let body = json!({"status": status});
    let (got, answer, _) = call_if(app, "PATCH", &path, Some(token), Some(body), Some(&tag)).await;
    assert_eq!(got, 200, "{answer}");
    assert_eq!(answer["status"], status);
}

async fn userinfo(app: &TestApp, token: &str) -> u16 {
    let response = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn a_disabled_user_gets_no_tokens_and_their_tokens_stop_working() {
    let app = spawn_app().await;
    let (_, admin_token) = admin(&app).await;
    let web = web_client(&app, true).await;
    let phone = "+12025550174";
    let scope = [("scope", "openid offline_access orders:read")];
    let code = code_for(&app, &web, phone, &scope).await;
    let tokens: Value = redeem(&app, &web, &code, &[]).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let user_id = peek(access).1["sub"].as_str().unwrap().to_owned();
    app.clock.advance(60);
    let unused_code = code_for(&app, &web, phone, &scope).await;
    app.clock.advance(60);
    let phone_token = app.phone_token(&web, phone).await;
    app.clock.advance(60);

    set_status(&app, &admin_token, &user_id, "disabled").await;

    assert_eq!(
        introspect(&app, &web, access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &web, refresh_token).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &web, &phone_token).await,
        json!({"active": false})
    );
    assert_eq!(userinfo(&app, access).await, 401);
    assert_error(
        refresh(&app, &web, refresh_token, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        redeem(&app, &web, &unused_code, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        app.exchange(&web, &phone_token, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(app.start_otp(&web, phone).await.status(), 200);
    let otp = app.sms.latest_code(phone);
    assert_error(
        app.otp_grant(&web, phone, &otp).await,
        400,
        "invalid_request",
    )
    .await;

    // Enabled again, the user's live tokens work again and new ones are issued.
    set_status(&app, &admin_token, &user_id, "active").await;
    assert_eq!(introspect(&app, &web, access).await["active"], true);
    assert_eq!(userinfo(&app, access).await, 200);
    assert_eq!(refresh(&app, &web, refresh_token, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_user_change_needs_the_current_etag() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let user = create_user(&app, &token, None).await;
    let path = format!("/admin/v1/users/{}", user["id"].as_str().unwrap());
    let (_, _, headers) = call(&app, "GET", &path, Some(&token), None).await;
    let first = etag(&headers);
    let disable = json!({"status": "disabled"});

    let (status, body, _) = call_if(
        &app,
        "PATCH",
        &path,
        Some(&token),
        Some(disable.clone()),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (428, Some("precondition_required"))
    );
    let (status, _, headers) = call_if(
        &app,
        "PATCH",
        &path,
        Some(&token),
        Some(disable.clone()),
        Some(&first),
    )
    .await;
    assert_eq!(status, 200);
    let second = etag(&headers);
    assert_ne!(first, second);
    let enable = json!({"status": "active"});
    // Entity tags compare character by character (RFC 9110 §8.8.3.2): the same number
    // written another way is another tag.
    let version = second.trim_matches('"');
    let (signed, padded) = (format!("\"+{version}\""), format!("\"0{version}\""));
    for stale in [first.as_str(), "W/\"2\"", "\"x\"", &signed, &padded] {
        let (status, body, _) = call_if(
            &app,
            "PATCH",
            &path,
            Some(&token),
            Some(enable.clone()),
            Some(stale),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (412, Some("precondition_failed"))
        );
    }
    let (_, read, _) = call(&app, "GET", &path, Some(&token), None).await;
    assert_eq!(
        read["status"], "disabled",
        "a refused change changed nothing"
    );
    let (status, _, _) = call_if(&app, "PATCH", &path, Some(&token), Some(enable), Some("*")).await;
    assert_eq!(status, 200);
    let (status, body, _) = call_if(
        &app,
        "PATCH",
        &path,
        Some(&token),
        Some(json!({"status": "gone"})),
        Some("*"),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("status")));
}

#[tokio::test]
async fn an_admin_unlocks_a_number_locked_by_wrong_codes() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.limits.max_consecutive_failures = 2;
        c.otp.resend_after_seconds = 0;
    })
    .await;
    let (_, token) = admin(&app).await;
    let acme = app.acme().await;
    let phone = "+12025550176";
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    for wrong in ["000000", "000001"] {
        let answer = app.otp_grant(&acme, phone, wrong).await;
        assert_error(answer, 400, "invalid_grant").await;
    }
    let locked = app.start_otp(&acme, phone).await;
    assert_error(locked, 403, "access_denied").await;

    let body = json!({"phone_number": "+1 202 555 0176"});
    let (status, answer, _) = call(
        &app,
        "POST",
        "/admin/v1/phones/unlock",
        Some(&token),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"phone_number": phone, "unlocked": true}));
    let (_, again, _) = call(
        &app,
        "POST",
        "/admin/v1/phones/unlock",
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(again["unlocked"], false);
    let (_, trail, _) = call(
        &app,
        "GET",
        "/admin/v1/audit?action=phone.",
        Some(&token),
        None,
    )
    .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 2, "{trail}");
    assert!(actions.contains(&"phone.locked") && actions.contains(&"phone.unlocked"));

    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    let code = app.sms.latest_code(phone);
    assert_eq!(app.otp_grant(&acme, phone, &code).await.status(), 200);

    let bad = json!({"phone_number": "not a number"});
    let (status, refused, _) = call(
        &app,
        "POST",
        "/admin/v1/phones/unlock",
        Some(&token),
        Some(bad),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["field"], "phone_number");
}
