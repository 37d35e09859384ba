//! The admin REST API: callsign's own access tokens, scopes per action, audited changes.

use callsign::registry::{self, admin_audience};
use serde_json::{Value, json};

use crate::helpers::{ORDERS, TestApp, TestClient, spawn_app};
use crate::openapi_check::check_answer;

/// The bootstrap admin client and an access token for it.
pub async fn admin(app: &TestApp) -> (TestClient, String) {
    let created =
        registry::bootstrap_admin(&app.services.store, app.clock.as_ref(), &app.issuer, false)
            .await
            .unwrap();
    let client = TestClient {
        id: created.client.id,
        secret: created.secret.map(|s| s.expose().to_owned()),
    };
    let token = machine_token(app, &client, "admin:read admin:write").await;
    (client, token)
}

pub async fn machine_token(app: &TestApp, client: &TestClient, scope: &str) -> String {
    let mut form = client.auth();
    form.extend([
        ("grant_type", "client_credentials".to_owned()),
        ("scope", scope.to_owned()),
    ]);
    let response = app.post_form("/token", &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls the admin API and checks the answer against the server's OpenAPI document.
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    call_if(app, method, path, token, body, None).await
}

/// [`call`] with an `If-Match` header.
pub async fn call_if(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = app.http.request(method.parse().unwrap(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let document = app.get_json("/admin/v1/openapi.json").await;
    check_answer(&document, method, path, status, &headers, &bytes);
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, headers)
}

/// The `ETag` of an answer.
pub fn etag(headers: &reqwest::header::HeaderMap) -> String {
    headers["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_registers_an_audience_and_a_client_and_sees_the_audit_trail() {
    let app = spawn_app().await;
    let (admin_client, token) = admin(&app).await;

    let (status, audience, _) = call(
        &app,
        "POST",
        "/admin/v1/audiences",
        Some(&token),
        Some(json!({"identifier": ORDERS, "scopes": ["orders:read"], "ttl": 600})),
    )
    .await;
    assert_eq!(status, 201, "{audience}");
    assert_eq!(audience["ttl"], 600);
    let (status, client, headers) = call(
        &app,
        "POST",
        "/admin/v1/clients",
        Some(&token),
        Some(json!({"name": "shop", "audiences": [ORDERS], "scopes": ["orders:read"]})),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(headers["cache-control"], "no-store");
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let id = client["client_id"].as_str().unwrap().to_owned();

    // The new client works, and reading it back never shows the secret.
    let shop = TestClient {
        id: id.clone(),
        secret: Some(secret.clone()),
    };
    let phone_token = app.phone_token(&shop, "+12025550160").await;
    assert_eq!(app.exchange(&shop, &phone_token, &[]).await.status(), 200);
    let (status, read, _) = call(
        &app,
        "GET",
        &format!("/admin/v1/clients/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(read.get("client_secret").is_none() && !read.to_string().contains(&secret));
    let (_, listed, _) = call(
        &app,
        "GET",
        "/admin/v1/clients?search=sho",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Rotating the secret shows the new one once; the old one stops working.
    let (status, rotated, _) = call(
        &app,
        "POST",
        &format!("/admin/v1/clients/{id}/secret"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["client_secret"], secret);
    app.clock.advance(60);
    assert_eq!(app.start_otp(&shop, "+12025550161").await.status(), 401);

    let (_, audit, _) = call(&app, "GET", "/admin/v1/audit", Some(&token), None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "audience.created",
        "client.created",
        "client.secret_rotated",
    ] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    let actor = format!("client:{}", admin_client.id);
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == actor || e["action"].as_str().unwrap().starts_with("key."))
    );
    assert!(!audit.to_string().contains(&secret));
}

#[tokio::test]
async fn admin_tokens_are_checked_like_any_resource_server_would() {
    let app = spawn_app().await;
    let (admin_client, token) = admin(&app).await;
    let reader = machine_token(&app, &admin_client, "admin:read").await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550162").await;
    let body: Value = app
        .exchange(&acme, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    let orders_token = body["access_token"].as_str().unwrap();

    let (status, body, headers) = call(&app, "GET", "/admin/v1/clients", None, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="callsign admin""#
    );
    for wrong in [orders_token, phone_token.as_str(), "garbage"] {
        let (status, _, headers) = call(&app, "GET", "/admin/v1/clients", Some(wrong), None).await;
        assert_eq!(status, 401);
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
    }
    let (status, _, _) = call(&app, "GET", "/admin/v1/keys", Some(&reader), None).await;
    assert_eq!(status, 200);
    let (status, body, headers) = call(
        &app,
        "POST",
        "/admin/v1/audiences",
        Some(&reader),
        Some(json!({"identifier": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"scope="admin:write""#)
    );
    assert_eq!(app.count("audiences").await, 3, "nothing was created");
    let (status, _, _) = call(&app, "GET", "/admin/v1/clients", Some(&token), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_admin_input_is_named_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let before = app.count("clients").await;

    let cases = [
        (
            "/admin/v1/audiences",
            json!({"identifier": "has space"}),
            400,
            "identifier",
        ),
        (
            "/admin/v1/audiences",
            json!({"identifier": "x", "ttl": 5}),
            400,
            "ttl",
        ),
        (
            "/admin/v1/audiences",
            json!({"identifier": "x", "colour": 1}),
            400,
            "body",
        ),
        (
            "/admin/v1/clients",
            json!({"name": "x", "audiences": ["https://nowhere.test"]}),
            400,
            "audiences",
        ),
        (
            "/admin/v1/clients",
            json!({"name": "x", "grant_types": ["password"]}),
            400,
            "grant_types",
        ),
        ("/admin/v1/clients", json!({"name": ""}), 400, "name"),
        (
            "/admin/v1/clients",
            json!({"name": "x".repeat(20_000)}),
            413,
            "body",
        ),
    ];
    for (path, input, status, field) in cases {
        let (got, body, _) = call(&app, "POST", path, Some(&token), Some(input.clone())).await;
        assert_eq!(got, status, "{input} → {body}");
        assert_eq!(body["field"], field, "{input} → {body}");
    }
    let admin_audience = admin_audience(&app.issuer);
    let (status, body, _) = call(
        &app,
        "POST",
        "/admin/v1/audiences",
        Some(&token),
        Some(json!({"identifier": admin_audience})),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let (status, _, _) = call(
        &app,
        "GET",
        "/admin/v1/clients/cl_nobody",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = call(&app, "GET", "/admin/v1/clients?limit=0", Some(&token), None).await;
    assert_eq!(status, 400);
    let (status, body, _) = call(
        &app,
        "GET",
        "/admin/v1/clients?limit=many",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("query")),
        "a JSON error, not plain text"
    );
    assert_eq!(app.count("clients").await, before);
}

#[tokio::test]
async fn bootstrap_refuses_to_run_twice_unless_forced() {
    let app = spawn_app().await;
    admin(&app).await;

    let again =
        registry::bootstrap_admin(&app.services.store, app.clock.as_ref(), &app.issuer, false)
            .await;
    assert!(again.is_err());
    let forced =
        registry::bootstrap_admin(&app.services.store, app.clock.as_ref(), &app.issuer, true).await;
    assert!(forced.unwrap().secret.is_some());
}

#[tokio::test]
async fn an_admin_rotates_keys_and_they_are_published_before_they_sign() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;

    let (status, body, _) = call(
        &app,
        "POST",
        "/admin/v1/keys/rotate",
        Some(&token),
        Some(json!({"purpose": "access_token"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kid = body["rotated"][0]["kid"].as_str().unwrap().to_owned();
    assert!(app.jwks().await.to_string().contains(&kid));
    let (_, keys, _) = call(&app, "GET", "/admin/v1/keys", Some(&token), None).await;
    let next = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    assert_eq!(next["state"], "next");
    let (_, audit, _) = call(
        &app,
        "GET",
        &format!("/admin/v1/audit?subject={kid}&action=key.rotation_requested"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(audit["items"][0]["address"], "127.0.0.1");
    assert_eq!(audit["items"][0]["detail"], "access_token");
    let (status, _, _) = call(
        &app,
        "POST",
        "/admin/v1/keys/rotate",
        Some(&token),
        Some(json!({"purpose": "nope"})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_person_signed_in_through_an_app_never_administers() {
    let app = spawn_app().await;
    admin(&app).await;
    // A careless registration: a phone app allowed the admin audience.
    let phone_app = app
        .client(callsign::registry::NewClient {
            name: "careless".into(),
            public: true,
            audiences: vec![admin_audience(&app.issuer)],
            scopes: vec!["admin:read".into(), "admin:write".into()],
            ..Default::default()
        })
        .await;
    let phone_token = app.phone_token(&phone_app, "+12025550163").await;
    let body: Value = app
        .exchange(
            &phone_app,
            &phone_token,
            &[("scope", "admin:read admin:write")],
        )
        .await
        .json()
        .await
        .unwrap();
    let person_token = body["access_token"].as_str().unwrap();

    let (status, _, _) = call(&app, "GET", "/admin/v1/clients", Some(person_token), None).await;

    assert_eq!(status, 401);
}

#[tokio::test]
async fn unknown_admin_paths_and_methods_answer_json() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let cases = [
        ("GET", "/admin/v1/nothing", 404, "not_found"),
        (
            "GET",
            "/admin/v1/users/usr_x/nothing/else",
            404,
            "not_found",
        ),
        ("PUT", "/admin/v1/users/usr_x", 405, "invalid_request"),
        ("DELETE", "/admin/v1/keys", 405, "invalid_request"),
    ];
    for (method, path, status, error) in cases {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{method} {path}");
    }
}
