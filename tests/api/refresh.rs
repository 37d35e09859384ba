//! Refresh tokens: rotation, reuse detection, binding to the client, narrowing only.

use std::sync::Arc;

use serde_json::Value;

use crate::authorize::{code_for, redeem, web_client};
use crate::helpers::{
    ORDERS, TestApp, TestClient, assert_error, introspect, peek, refresh, spawn_app,
};

async fn signed_in(app: &TestApp, client: &TestClient, phone: &str) -> Value {
    let code = code_for(
        app,
        client,
        phone,
        &[("scope", "openid offline_access orders:read")],
    )
    .await;
    let response = redeem(app, client, &code, &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let first = signed_in(&app, &acme, "+12025550140").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let second: Value = refresh(&app, &acme, &rt1, &[]).await.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    let at2 = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert!(second["id_token"].is_string());
    assert_eq!(introspect(&app, &acme, &at2).await["active"], true);

    assert_error(refresh(&app, &acme, &rt1, &[]).await, 400, "invalid_grant").await;
    let events = app.services.store.audit_events().await.unwrap();
    let reused = events
        .iter()
        .find(|e| e.action == "refresh_token.reused")
        .expect("the reuse is in the audit trail");
    assert_eq!(reused.actor, "server");
    assert!(reused.detail.contains(&acme.id) && !reused.detail.contains(&rt1));

    assert_error(refresh(&app, &acme, &rt2, &[]).await, 400, "invalid_grant").await;
    assert_eq!(
        introspect(&app, &acme, &at2).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_refreshes_of_one_token_give_one_success_and_no_server_error() {
    let app = Arc::new(spawn_app().await);
    let acme = web_client(&app, true).await;
    let first = signed_in(&app, &acme, "+12025550141").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, acme, rt1) = (app.clone(), acme.clone(), rt1.clone());
        tasks.spawn(async move {
            let response = refresh(&app, &acme, &rt1, &[]).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        });
    }
    let answers = tasks.join_all().await;

    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 200 || (*s == 400 && b["error"] == "invalid_grant"))
    );
    // The losers were reuse: the winner's successor is revoked with the family.
    let rt2 = winners[0]["refresh_token"].as_str().unwrap();
    assert_error(refresh(&app, &acme, rt2, &[]).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_refresh_may_narrow_but_never_widen() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let first = signed_in(&app, &acme, "+12025550142").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let wider = refresh(
        &app,
        &acme,
        &rt1,
        &[("scope", "openid offline_access orders:read orders:write")],
    )
    .await;
    assert_error(wider, 400, "invalid_scope").await;
    let other = refresh(
        &app,
        &acme,
        &rt1,
        &[("audience", "https://ledger.api.example.test")],
    )
    .await;
    assert_error(other, 400, "invalid_target").await;

    let narrower: Value = refresh(
        &app,
        &acme,
        &rt1,
        &[
            ("scope", "orders:read offline_access"),
            ("audience", ORDERS),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let (_, claims) = peek(narrower["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "orders:read offline_access");
    assert!(narrower["id_token"].is_null(), "openid was dropped");

    // RFC 6749 §6: the new refresh token keeps the whole grant.
    let rt2 = narrower["refresh_token"].as_str().unwrap();
    let whole: Value = refresh(&app, &acme, rt2, &[]).await.json().await.unwrap();
    let (_, claims) = peek(whole["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "openid offline_access orders:read");
    assert!(whole["id_token"].is_string());
}

#[tokio::test]
async fn a_refresh_token_belongs_to_its_client() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let ledger = app
        .client(callsign::registry::NewClient {
            name: "ledger-web".into(),
            grants: vec!["authorization_code".into(), "refresh_token".into()],
            audiences: vec![ORDERS.into()],
            redirect_uris: vec!["https://ledger.example.test/cb".into()],
            ..Default::default()
        })
        .await;
    let first = signed_in(&app, &acme, "+12025550143").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let stolen = refresh(&app, &ledger, &rt1, &[]).await;
    assert_error(stolen, 400, "invalid_grant").await;
    let mut revoke = ledger.auth();
    revoke.extend([
        ("token", rt1.clone()),
        ("token_type_hint", "refresh_token".to_owned()),
    ]);
    assert_eq!(app.post_form("/revoke", &revoke).await.status(), 200);

    assert_eq!(
        refresh(&app, &acme, &rt1, &[]).await.status(),
        200,
        "untouched by the other client"
    );
}

#[tokio::test]
async fn an_idle_refresh_token_expires() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let first = signed_in(&app, &acme, "+12025550144").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    app.clock.advance(14 * 86_400);

    assert_error(refresh(&app, &acme, &rt1, &[]).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn token_exchange_gives_a_refresh_token_with_offline_access() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let phone_token = app.phone_token(&acme, "+12025550145").await;

    let without: Value = app
        .exchange(&acme, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(without["refresh_token"].is_null());
    let with: Value = app
        .exchange(
            &acme,
            &phone_token,
            &[("scope", "offline_access orders:read")],
        )
        .await
        .json()
        .await
        .unwrap();
    let rt = with["refresh_token"].as_str().expect("a refresh token");

    let refreshed: Value = refresh(&app, &acme, rt, &[]).await.json().await.unwrap();
    let (_, claims) = peek(refreshed["access_token"].as_str().unwrap());
    let (_, original) = peek(with["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], original["sub"]);
    assert_eq!(claims["auth_time"], original["auth_time"]);
}
