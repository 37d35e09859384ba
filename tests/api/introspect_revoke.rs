//! Introspection (RFC 7662), revocation (RFC 7009) and userinfo (OpenID Connect §5.3).

use serde_json::{Value, json};

use crate::authorize::{code_for, redeem, web_client};
use crate::helpers::{ORDERS, TestApp, TestClient, assert_error, introspect, spawn_app};

async fn access_token(app: &TestApp, client: &TestClient, phone: &str) -> String {
    let phone_token = app.phone_token(client, phone).await;
    let body: Value = app
        .exchange(client, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn introspection_describes_live_tokens_to_their_client_only() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let stranger = app.confidential_client(&[], &[]).await;
    let resource_server = app.confidential_client(&[ORDERS], &[]).await;
    let token = access_token(&app, &acme, "+12025550150").await;

    let own = introspect(&app, &acme, &token).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["client_id"], acme.id);
    assert_eq!(own["aud"], ORDERS);
    assert!(own["sub"].as_str().unwrap().starts_with("usr_"));
    assert!(own["exp"].is_i64() && own["iat"].is_i64() && own["iss"] == app.issuer);
    assert_eq!(
        introspect(&app, &resource_server, &token).await["active"],
        true
    );
    assert_eq!(
        introspect(&app, &stranger, &token).await,
        json!({"active": false})
    );
    for garbage in ["garbage", "a.b.c", &"x".repeat(5000)] {
        assert_eq!(
            introspect(&app, &acme, garbage).await,
            json!({"active": false})
        );
    }
    let phone_token = app.phone_token(&acme, "+12025550151").await;
    assert_eq!(
        introspect(&app, &acme, &phone_token).await["token_type"],
        "phone_token"
    );
    app.clock.advance(900);
    assert_eq!(
        introspect(&app, &acme, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn introspection_and_revocation_require_client_authentication() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let public = app.public_client(&[ORDERS], &[]).await;
    let token = access_token(&app, &acme, "+12025550152").await;

    for path in ["/introspect", "/revoke"] {
        let anonymous = app.post_form(path, &[("token", token.clone())]).await;
        assert_error(anonymous, 401, "invalid_client").await;
    }
    let mut form = public.auth();
    form.push(("token", token.clone()));
    assert_error(
        app.post_form("/introspect", &form).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(
        introspect(&app, &acme, &token).await["active"],
        true,
        "nothing was revoked"
    );
}

#[tokio::test]
async fn a_revoked_access_token_is_inactive_and_foreign_tokens_are_left_alone() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let other = app.confidential_client(&[ORDERS], &[]).await;
    let token = access_token(&app, &acme, "+12025550153").await;
    let revoke = |client: &TestClient, token: &str, hint: Option<&str>| {
        let mut form = client.auth();
        form.push(("token", token.to_owned()));
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint.to_owned()));
        }
        form
    };

    assert_eq!(
        app.post_form("/revoke", &revoke(&other, &token, None))
            .await
            .status(),
        200
    );
    assert_eq!(introspect(&app, &acme, &token).await["active"], true);
    let unknown = app
        .post_form(
            "/revoke",
            &revoke(&acme, "no-such-token", Some("refresh_token")),
        )
        .await;
    assert_eq!(unknown.status(), 200);
    let odd_hint = app
        .post_form("/revoke", &revoke(&acme, &token, Some("id_token")))
        .await;
    assert_error(odd_hint, 400, "unsupported_token_type").await;

    let revoked = app
        .post_form("/revoke", &revoke(&acme, &token, Some("access_token")))
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        introspect(&app, &acme, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn forged_tokens_introspect_as_inactive() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let token = access_token(&app, &acme, "+12025550154").await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"alg":"none","typ":"at+jwt"}"#,
    );
    let none = format!("{}.{}.", parts[0], parts[1]);

    assert_eq!(
        introspect(&app, &acme, &none).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn userinfo_follows_the_bearer_token_rules() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let code = code_for(&app, &acme, "+12025550155", &[("scope", "openid phone")]).await;
    let tokens: Value = redeem(&app, &acme, &code, &[]).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let get = |bearer: Option<String>| {
        let mut request = app.http.get(app.url("/userinfo"));
        if let Some(bearer) = bearer {
            request = request.header("authorization", bearer);
        }
        request.send()
    };

    let info = get(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["phone_number"], "+12025550155");

    let none = get(None).await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        r#"Bearer realm="callsign""#
    );
    let bad = get(Some("Bearer not-a-token".into())).await.unwrap();
    assert_eq!(bad.status(), 401);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let in_query = app
        .http
        .get(format!("{}?access_token={token}", app.url("/userinfo")))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 400);
    // A token for an API, not for userinfo.
    let api_token = access_token(&app, &acme, "+12025550156").await;
    let wrong_audience = get(Some(format!("Bearer {api_token}"))).await.unwrap();
    assert_eq!(wrong_audience.status(), 401);
    app.clock.advance(900);
    let expired = get(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(expired.status(), 401);
}

#[tokio::test]
async fn a_revoked_phone_token_can_no_longer_be_exchanged() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550157").await;
    let mut form = acme.auth();
    form.push(("token", phone_token.clone()));

    assert_eq!(app.post_form("/revoke", &form).await.status(), 200);

    assert_error(
        app.exchange(&acme, &phone_token, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn an_exchange_granted_openid_serves_at_userinfo() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let phone_token = app.phone_token(&acme, "+12025550158").await;
    let body: Value = app
        .exchange(
            &acme,
            &phone_token,
            &[("scope", "openid phone orders:read")],
        )
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();

    let info = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();

    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["phone_number"], "+12025550158");
}
