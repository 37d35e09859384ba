//! The signing-key lifecycle as resource servers see it: publication before use, overlap
//! through rotation, retirement only after the last token expires.

use std::collections::HashSet;

use callsign::keys::Purpose;
use callsign::registry::NewClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::{ORDERS, TestApp, TestClient, assert_error, peek, spawn_app_with};

/// A resource server that caches the JWKS for exactly the advertised max-age and never
/// refetches early, not even for an unknown kid: the strictest client a server must serve.
struct CachingResourceServer {
    cache: Option<(JwkSet, i64)>,
    fetches: u32,
}

impl CachingResourceServer {
    fn new() -> Self {
        Self {
            cache: None,
            fetches: 0,
        }
    }

    async fn verify(&mut self, app: &TestApp, token: &str) -> Result<Value, String> {
        let now = app.now();
        if self
            .cache
            .as_ref()
            .is_none_or(|(_, expires)| now >= *expires)
        {
            let response = app.get("/.well-known/jwks.json").await;
            let control = response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .to_owned();
            let max_age: i64 = control.rsplit("max-age=").next().unwrap().parse().unwrap();
            self.cache = Some((response.json().await.unwrap(), now + max_age));
            self.fetches += 1;
        }
        let (jwks, _) = self.cache.as_ref().unwrap();
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwk = jwks.find(&kid).ok_or(format!("unknown kid {kid}"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&app.issuer]);
        validation.set_audience(&[ORDERS]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| e.to_string())?
            .claims;
        if claims["exp"].as_i64().unwrap() <= now {
            return Err("expired".into());
        }
        Ok(claims)
    }
}

async fn machine_client(app: &TestApp) -> TestClient {
    app.audience(ORDERS, &["orders:read"]).await;
    app.client(NewClient {
        name: "orders-svc".into(),
        grants: vec![
            "client_credentials".into(),
            "sms-otp".into(),
            "token-exchange".into(),
        ],
        audiences: vec![ORDERS.into()],
        ..NewClient::default()
    })
    .await
}

async fn access_token(app: &TestApp, client: &TestClient) -> String {
    let mut form = client.auth();
    form.push(("grant_type", "client_credentials".into()));
    let response = app.post_form("/token", &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn kid(token: &str) -> String {
    peek(token).0["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_cached_jwks_verifies_every_token_through_three_scheduled_rotations() {
    let app = spawn_app_with(|c| {
        c.keys.rotation_period_seconds = 3600;
        // Eighty sign-ins by one client from one address in four hours: not abuse here.
        c.limits.per_client.max = 0;
        c.limits.per_address.max = 0;
        c.limits.per_prefix.max = 0;
        c.limits.per_region.max = 0;
    })
    .await;
    let client = machine_client(&app).await;
    let mut resource_server = CachingResourceServer::new();
    let mut live: Vec<(String, i64)> = Vec::new();
    let mut access_kids = HashSet::new();
    let mut phone_kids = HashSet::new();
    let mut live_phone_tokens: Vec<(String, i64)> = Vec::new();
    let mut failures = Vec::new();

    for step in 0..(4 * 60 + 30) {
        app.clock.advance(60);
        app.services.keys.maintain().await.unwrap();
        let token = access_token(&app, &client).await;
        access_kids.insert(kid(&token));
        live.push((token, app.now() + 900));
        live.retain(|(_, exp)| *exp > app.now());
        for (token, _) in &live {
            if let Err(error) = resource_server.verify(&app, token).await {
                failures.push(format!("step {step}: {error}"));
            }
        }
        // Every live token's key is still published, by a fresh fetch too.
        let published: Vec<String> = app.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        for (token, _) in &live {
            assert!(
                published.contains(&kid(token)),
                "step {step}: a live token's key was removed"
            );
        }
        if step % 3 == 0 {
            let phone = format!("+1202555{:04}", 1000 + step);
            let phone_token = app.phone_token(&client, &phone).await;
            phone_kids.insert(kid(&phone_token));
            live_phone_tokens.push((phone_token, app.now() + 300));
        }
        // Phone tokens signed before a rotation are still exchanged after it.
        live_phone_tokens.retain(|(_, exp)| *exp > app.now());
        for (phone_token, _) in &live_phone_tokens {
            let status = app.exchange(&client, phone_token, &[]).await.status();
            if status != 200 {
                failures.push(format!("step {step}: exchange answered {status}"));
            }
        }
    }

    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        access_kids.len() >= 4,
        "three rotations happened: {access_kids:?}"
    );
    assert!(
        phone_kids.len() >= 4,
        "phone keys rotated too: {phone_kids:?}"
    );
    let jwks = app.jwks().await;
    assert!(
        jwks["keys"].as_array().unwrap().len() <= 6,
        "retired keys were removed: {jwks}"
    );
    assert!(
        resource_server.fetches > 40,
        "the resource server honoured the max-age"
    );
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_retired_keys_stay_until_tokens_expire() {
    let app = spawn_app_with(|c| c.keys.rotation_period_seconds = 0).await;
    let client = machine_client(&app).await;
    let before = access_token(&app, &client).await;
    let old_kid = kid(&before);

    let next = app
        .services
        .keys
        .rotate(Purpose::AccessToken, "test")
        .await
        .unwrap();

    // Published at once, not signing yet.
    let published = app.jwks().await.to_string();
    assert!(published.contains(&next.kid) && published.contains(&old_kid));
    assert_eq!(kid(&access_token(&app, &client).await), old_kid);
    let lead = next.activate_at.unwrap() - app.now();
    assert!(
        lead >= 300,
        "published for at least the JWKS max-age: {lead}"
    );

    app.clock.advance(lead);
    app.services.keys.maintain().await.unwrap();
    assert_eq!(kid(&access_token(&app, &client).await), next.kid);
    let published = app.jwks().await.to_string();
    assert!(
        published.contains(&old_kid),
        "the retired key verifies tokens still alive"
    );

    // The retired key goes once its last token (lifetime 900 s) has expired, plus the
    // reload interval (30 s) and skew (60 s).
    app.clock.advance(900 + 30 + 59);
    app.services.keys.maintain().await.unwrap();
    assert!(app.jwks().await.to_string().contains(&old_kid));
    app.clock.advance(1);
    app.services.keys.maintain().await.unwrap();
    assert!(!app.jwks().await.to_string().contains(&old_kid));
}

#[tokio::test]
async fn revoking_a_key_removes_it_at_once_and_a_replacement_signs() {
    let app = spawn_app_with(|c| c.keys.rotation_period_seconds = 0).await;
    let client = machine_client(&app).await;
    let phone_token = app.phone_token(&client, "+12025550190").await;
    let revoked_kid = kid(&phone_token);

    let revoked = app
        .services
        .keys
        .revoke(&revoked_kid, "test")
        .await
        .unwrap();

    assert_eq!(revoked.state, "active");
    let replacement = revoked.replacement.unwrap();
    assert!(!app.jwks().await.to_string().contains(&revoked_kid));
    assert_error(
        app.exchange(&client, &phone_token, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    app.clock.advance(60);
    let fresh = app.phone_token(&client, "+12025550190").await;
    assert_eq!(kid(&fresh), replacement);
    assert_eq!(app.exchange(&client, &fresh, &[]).await.status(), 200);
    let events = app.services.store.audit_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "key.revoked" && e.subject == revoked_kid)
    );
}

#[tokio::test]
async fn eddsa_and_rs256_keys_can_be_chosen_per_purpose() {
    let app = spawn_app_with(|c| {
        c.keys.phone_token_algorithm = "EdDSA".into();
        c.keys.access_token_algorithm = "RS256".into();
    })
    .await;
    let client = machine_client(&app).await;
    let phone_token = app.phone_token(&client, "+12025550191").await;
    let body: Value = app
        .exchange(&client, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    let access = body["access_token"].as_str().unwrap();

    assert_eq!(peek(&phone_token).0["alg"], "EdDSA");
    assert_eq!(peek(access).0["alg"], "RS256");
    let mut resource_server = CachingResourceServer::new();
    resource_server.verify(&app, access).await.unwrap();
    let jwks = app.jwks().await;
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap();
    let modulus = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        rsa["n"].as_str().unwrap(),
    )
    .unwrap();
    assert!(modulus.len() * 8 >= 2048);
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(rsa.get(private).is_none());
    }
    let discovery: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["access_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
}

#[tokio::test]
async fn keys_are_encrypted_at_rest_and_a_wrong_secret_stops_start_up() {
    let secret = "correct horse battery staple, thirty-two+";
    let app = spawn_app_with(|c| c.keys.encryption_secret = Some(secret_of(secret))).await;
    let client = machine_client(&app).await;
    let phone_token = app.phone_token(&client, "+12025550192").await;
    let database_url = app.database_url.clone();
    let clock = app.clock.clone();
    let issuer = app.issuer.clone();
    let stored = app.services.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        stored.iter().all(|k| k.private_key[0] == 1),
        "sealed with AES-256-GCM"
    );
    let dir = app.stop().await;
    let config = |secret: Option<&str>| callsign::config::Config {
        issuer: Some(issuer.clone()),
        listen: "127.0.0.1:0".into(),
        database_url: database_url.clone(),
        keys: callsign::config::KeysConfig {
            encryption_secret: secret.map(secret_of),
            ..Default::default()
        },
        ..Default::default()
    };

    for (wrong, message) in [
        (
            Some("a different secret that is long enough!!"),
            "keys.encryption_secret does not decrypt",
        ),
        (None, "set keys.encryption_secret"),
    ] {
        let settings = config(wrong).validate().unwrap();
        let Err(error) = callsign::Application::build(settings).await else {
            panic!("the server started with a wrong secret");
        };
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert!(chain.contains(message), "{chain}");
    }

    let app = crate::helpers::start(config(Some(secret)), dir, clock).await;
    assert_eq!(app.exchange(&client, &phone_token, &[]).await.status(), 200);
}

#[tokio::test]
async fn keys_stored_plain_are_encrypted_once_a_secret_is_set() {
    let app = spawn_app_with(|_| {}).await;
    let database_url = app.database_url.clone();
    let clock = app.clock.clone();
    let jwks = app.jwks().await;
    let dir = app.stop().await;
    let config = callsign::config::Config {
        listen: "127.0.0.1:0".into(),
        database_url,
        keys: callsign::config::KeysConfig {
            encryption_secret: Some(secret_of("now a secret of at least 32 characters")),
            ..Default::default()
        },
        ..Default::default()
    };

    let app = crate::helpers::start(config, dir, clock).await;

    assert_eq!(app.jwks().await, jwks, "the same keys, now sealed");
    let events = app.services.store.audit_events().await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "key.encrypted")
            .count(),
        3
    );
    assert_eq!(
        events.iter().filter(|e| e.action == "key.created").count(),
        3,
        "none regenerated"
    );
}

fn secret_of(secret: &str) -> callsign::config::Secret {
    callsign::config::Secret::new(secret.to_owned())
}
