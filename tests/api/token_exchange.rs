//! RFC 8693 token exchange: phone token → access token.

use callsign::registry::NewClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::{
    ACCESS_TOKEN_TYPE, LEDGER, ORDERS, PHONE_TOKEN_TYPE, TOKEN_EXCHANGE, assert_error, peek,
    spawn_app, spawn_app_with,
};

/// Verifies `token` as a resource server would: from the served JWKS alone.
async fn verify_as_resource_server(app: &crate::helpers::TestApp, token: &str, aud: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(app.jwks().await).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&app.issuer]);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies")
        .claims
}

#[tokio::test]
async fn a_phone_token_becomes_an_access_token_that_verifies_from_the_jwks() {
    let app = spawn_app().await;
    let client = app.acme().await;
    let phone_token = app.phone_token(&client, "+12025550118").await;

    let response = app
        .exchange(
            &client,
            &phone_token,
            &[("audience", ORDERS), ("scope", "orders:read")],
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "orders:read");
    let token = body["access_token"].as_str().unwrap();
    let claims = verify_as_resource_server(&app, token, ORDERS).await;
    assert_eq!(claims["iss"], app.issuer);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["amr"], serde_json::json!(["sms", "otp"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert!(claims["auth_time"].is_i64() && claims["jti"].is_string());
    assert!(claims["sub"].as_str().unwrap().starts_with("usr_"));
    assert!(!token.contains("12025550118") && !claims.to_string().contains("12025550118"));
    assert!(claims.get("phone_number").is_none());
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn the_same_phone_always_resolves_to_the_same_user() {
    let app = spawn_app().await;
    let client = app.acme().await;
    let first = app.phone_token(&client, "+12025550119").await;
    app.clock.advance(60);
    let second = app.phone_token(&client, "+12025550119").await;

    let a: Value = app
        .exchange(&client, &first, &[])
        .await
        .json()
        .await
        .unwrap();
    let b: Value = app
        .exchange(&client, &second, &[])
        .await
        .json()
        .await
        .unwrap();

    let (_, a) = peek(a["access_token"].as_str().unwrap());
    let (_, b) = peek(b["access_token"].as_str().unwrap());
    assert_eq!(a["sub"], b["sub"]);
    assert_eq!(
        (app.count("users").await, app.count("phones").await),
        (1, 1)
    );
    assert_eq!(app.count("phone_links").await, 1);
}

#[tokio::test]
async fn audiences_the_client_was_never_granted_are_invalid_targets() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550118").await;
    let before = app.snapshot().await;

    let cases: [&[(&str, &str)]; 5] = [
        &[("audience", LEDGER)],
        &[("audience", "https://unregistered.api.example.test")],
        &[("audience", ORDERS), ("audience", LEDGER)],
        &[("resource", LEDGER)],
        &[
            ("audience", ORDERS),
            ("resource", "https://unregistered.api.example.test/"),
        ],
    ];
    for extra in cases {
        let response = app.exchange(&acme, &phone_token, extra).await;
        assert_error(response, 400, "invalid_target").await;
    }

    assert_eq!(
        app.snapshot().await,
        before,
        "a refused exchange creates no user"
    );
}

#[tokio::test]
async fn without_an_audience_the_default_is_used_and_never_all() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let two = app.confidential_client(&[ORDERS, LEDGER], &[]).await;
    let acme_token = app.phone_token(&acme, "+12025550120").await;
    let two_token = app.phone_token(&two, "+12025550121").await;

    let response = app.exchange(&acme, &acme_token, &[]).await;
    let body: Value = response.json().await.unwrap();
    let (_, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS);
    assert!(body.get("scope").is_none() && claims.get("scope").is_none());

    let response = app.exchange(&two, &two_token, &[]).await;
    assert_error(response, 400, "invalid_target").await;

    let response = app
        .exchange(
            &two,
            &two_token,
            &[("audience", ORDERS), ("resource", LEDGER)],
        )
        .await;
    let body: Value = response.json().await.unwrap();
    let (_, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], serde_json::json!([ORDERS, LEDGER]));
}

#[tokio::test]
async fn resources_must_be_absolute_uris_without_fragments() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550122").await;

    for resource in [
        "orders",
        "/relative/path",
        "https://orders.api.example.test#frag",
    ] {
        let response = app
            .exchange(&acme, &phone_token, &[("resource", resource)])
            .await;
        assert_error(response, 400, "invalid_target").await;
    }
    let response = app
        .exchange(&acme, &phone_token, &[("resource", ORDERS)])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn scopes_outside_the_audience_or_the_client_are_invalid_scopes() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550124").await;

    for scope in [
        "orders:write",
        "ledger:read",
        "no-such-scope",
        "orders:read bad\"scope",
    ] {
        let response = app
            .exchange(
                &acme,
                &phone_token,
                &[("audience", ORDERS), ("scope", scope)],
            )
            .await;
        assert_error(response, 400, "invalid_scope").await;
    }
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn an_exchange_stays_within_the_scopes_of_the_sms_step() {
    let app = spawn_app().await;
    app.audience(ORDERS, &["orders:read", "orders:write"]).await;
    let client = app
        .public_client(&[ORDERS], &["orders:read", "orders:write"])
        .await;
    app.start_otp(&client, "+12025550125").await;
    let code = app.sms.latest_code("+12025550125");
    let mut pairs = client.auth();
    pairs.extend([
        ("grant_type", crate::helpers::SMS_OTP.to_owned()),
        ("phone_number", "+12025550125".to_owned()),
        ("otp", code),
        ("scope", "orders:read".to_owned()),
    ]);
    let body: Value = app.post_form("/token", &pairs).await.json().await.unwrap();
    let phone_token = body["access_token"].as_str().unwrap();

    let wider = app
        .exchange(
            &client,
            phone_token,
            &[("scope", "orders:read orders:write")],
        )
        .await;
    assert_error(wider, 400, "invalid_scope").await;
    let same = app
        .exchange(&client, phone_token, &[("scope", "orders:read")])
        .await;
    assert_eq!(same.status(), 200);
}

#[tokio::test]
async fn another_clients_phone_token_is_an_invalid_request() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let ledger = app.confidential_client(&[LEDGER], &[]).await;
    let acme_token = app.phone_token(&acme, "+12025550118").await;

    let response = app
        .exchange(&ledger, &acme_token, &[("audience", LEDGER)])
        .await;

    assert_error(response, 400, "invalid_request").await;
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn malformed_exchange_requests_are_invalid_requests() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550126").await;
    let request = |pairs: &[(&'static str, &str)]| {
        let mut form = acme.auth();
        form.push(("grant_type", TOKEN_EXCHANGE.to_owned()));
        form.extend(pairs.iter().map(|(k, v)| (*k, v.to_string())));
        form
    };

    let cases = [
        request(&[("subject_token_type", PHONE_TOKEN_TYPE)]),
        request(&[("subject_token", &phone_token)]),
        request(&[
            ("subject_token", &phone_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ]),
        request(&[
            ("subject_token", &phone_token),
            ("subject_token_type", PHONE_TOKEN_TYPE),
            ("actor_token", &phone_token),
            ("actor_token_type", PHONE_TOKEN_TYPE),
        ]),
        request(&[
            ("subject_token", &phone_token),
            ("subject_token_type", PHONE_TOKEN_TYPE),
            ("actor_token_type", PHONE_TOKEN_TYPE),
        ]),
        request(&[
            ("subject_token", &phone_token),
            ("subject_token_type", PHONE_TOKEN_TYPE),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ]),
        request(&[
            ("subject_token", &phone_token),
            ("subject_token", &phone_token),
            ("subject_token_type", PHONE_TOKEN_TYPE),
        ]),
    ];
    for form in cases {
        assert_error(app.post_form("/token", &form).await, 400, "invalid_request").await;
    }
    let explicit = request(&[
        ("subject_token", &phone_token),
        ("subject_token_type", PHONE_TOKEN_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
    ]);
    assert_eq!(app.post_form("/token", &explicit).await.status(), 200);
}

#[tokio::test]
async fn an_expired_phone_token_is_an_invalid_request() {
    let app = spawn_app_with(|c| c.phone_token.ttl_seconds = 120).await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550127").await;
    app.clock.advance(119);
    assert_eq!(app.exchange(&acme, &phone_token, &[]).await.status(), 200);

    app.clock.advance(1);
    let response = app.exchange(&acme, &phone_token, &[]).await;

    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn with_sign_up_disabled_an_unknown_phone_is_refused_by_policy() {
    let app = spawn_app_with(|c| c.signup.create_users = false).await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550128").await;

    let response = app.exchange(&acme, &phone_token, &[]).await;

    let body = assert_error(response, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("sign-up is disabled")
    );
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn a_client_not_registered_for_exchange_is_unauthorized() {
    let app = spawn_app().await;
    app.audience(ORDERS, &[]).await;
    let otp_only = app
        .client(NewClient {
            name: "otp only".into(),
            public: true,
            grants: vec!["sms-otp".into()],
            audiences: vec![ORDERS.into()],
            ..NewClient::default()
        })
        .await;
    let phone_token = app.phone_token(&otp_only, "+12025550129").await;

    let response = app.exchange(&otp_only, &phone_token, &[]).await;

    assert_error(response, 400, "unauthorized_client").await;
}
