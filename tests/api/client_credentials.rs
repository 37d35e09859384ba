//! The `client_credentials` grant for machine clients.

use callsign::registry::NewClient;
use serde_json::Value;

use crate::helpers::{LEDGER, ORDERS, TestApp, TestClient, assert_error, peek, spawn_app};

async fn machine_client(app: &TestApp) -> TestClient {
    app.audience(ORDERS, &["orders:read", "orders:write"]).await;
    app.audience(LEDGER, &["ledger:read"]).await;
    app.client(NewClient {
        name: "orders-svc".into(),
        grants: vec!["client_credentials".into()],
        audiences: vec![ORDERS.into()],
        scopes: vec!["orders:read".into()],
        ..NewClient::default()
    })
    .await
}

async fn request(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&'static str, &str)],
) -> reqwest::Response {
    let mut form = client.auth();
    form.push(("grant_type", "client_credentials".to_owned()));
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    app.post_form("/token", &form).await
}

#[tokio::test]
async fn a_machine_client_gets_a_token_about_itself() {
    let app = spawn_app().await;
    let client = machine_client(&app).await;

    let response = request(&app, &client, &[("scope", "orders:read")]).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("issued_token_type").is_none());
    let (header, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], client.id);
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "orders:read");
    assert!(claims.get("auth_time").is_none() && claims.get("amr").is_none());
}

#[tokio::test]
async fn a_machine_client_cannot_reach_an_audience_it_was_not_granted() {
    let app = spawn_app().await;
    let client = machine_client(&app).await;

    assert_error(
        request(&app, &client, &[("audience", LEDGER)]).await,
        400,
        "invalid_target",
    )
    .await;
    let scope = request(&app, &client, &[("scope", "orders:write")]).await;
    assert_error(scope, 400, "invalid_scope").await;
}

#[tokio::test]
async fn a_phone_client_may_not_use_client_credentials() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let public = app.public_client(&[ORDERS], &[]).await;

    assert_error(request(&app, &acme, &[]).await, 400, "unauthorized_client").await;
    assert_error(
        request(&app, &public, &[]).await,
        400,
        "unauthorized_client",
    )
    .await;
}
