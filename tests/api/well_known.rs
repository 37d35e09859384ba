//! Discovery, JWKS, static documents, health, and the pages.

use std::sync::Arc;

use callsign::clock::ManualClock;
use callsign::config::Config;
use openidconnect::core::CoreProviderMetadata;
use openidconnect::{IssuerUrl, JsonWebKey};
use serde_json::Value;

use crate::helpers::{ORDERS, SMS_OTP, TOKEN_EXCHANGE, peek, spawn_app, spawn_app_with, start};

#[tokio::test]
async fn both_discovery_documents_are_one_document_naming_the_issuer() {
    let app = spawn_app().await;
    app.audience(ORDERS, &["orders:read"]).await;

    let oidc = app.get("/.well-known/openid-configuration").await;
    let oauth = app.get("/.well-known/oauth-authorization-server").await;

    assert_eq!(oidc.status(), 200);
    assert!(
        oidc.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let oidc: Value = oidc.json().await.unwrap();
    let oauth: Value = oauth.json().await.unwrap();
    assert_eq!(oidc, oauth);
    let issuer = &app.issuer;
    assert_eq!(oidc["issuer"], *issuer);
    assert_eq!(oidc["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(oidc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(oidc["sms_otp_endpoint"], format!("{issuer}/otp/start"));
    assert_eq!(
        oidc["authorization_endpoint"],
        format!("{issuer}/authorize")
    );
    let grants = oidc["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&SMS_OTP.into()) && grants.contains(&TOKEN_EXCHANGE.into()));
    assert_eq!(
        oidc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        oidc["scopes_supported"],
        serde_json::json!(["openid", "phone", "offline_access", "orders:read"])
    );
}

#[tokio::test]
async fn a_real_openid_client_reads_the_discovery_document_and_the_keys() {
    let app = spawn_app().await;
    let http = app.http.clone();
    let client = move |request| crate::helpers::oidc_send(http.clone(), request);

    let issuer = IssuerUrl::new(app.issuer.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &client)
        .await
        .unwrap();

    assert_eq!(metadata.issuer().as_str(), app.issuer);
    assert_eq!(
        metadata.token_endpoint().unwrap().as_str(),
        format!("{}/token", app.issuer)
    );
    let keys = metadata.jwks().keys();
    assert_eq!(keys.len(), 3);
    let served = app.jwks().await;
    for key in keys {
        let kid = key.key_id().expect("every key has a kid").as_str();
        assert!(
            served["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == kid)
        );
    }
}

#[tokio::test]
async fn the_jwks_publishes_public_members_only_with_a_max_age() {
    let app = spawn_app().await;

    let response = app.get("/.well-known/jwks.json").await;

    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "one key per purpose");
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), 3, "kids are distinct");
    for key in keys {
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort();
        let expected: &[&str] = match key["kty"].as_str() {
            Some("EC") => &["alg", "crv", "kid", "kty", "use", "x", "y"],
            Some("RSA") => &["alg", "e", "kid", "kty", "n", "use"],
            other => panic!("unexpected key type {other:?}"),
        };
        assert_eq!(members, expected, "public members only");
        assert_eq!(key["use"], "sig");
    }
    let algorithms: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algorithms.iter().filter(|a| **a == "ES256").count(), 2);
    assert_eq!(algorithms.iter().filter(|a| **a == "RS256").count(), 1);
}

#[tokio::test]
async fn every_issued_token_names_a_published_key_and_the_two_kinds_use_different_keys() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550170").await;
    let body: Value = app
        .exchange(&acme, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    let jwks = app.jwks().await;
    let published: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();

    let (phone_header, phone_claims) = peek(&phone_token);
    let (access_header, access_claims) = peek(access_token);

    assert!(published.contains(&&phone_header["kid"]));
    assert!(published.contains(&&access_header["kid"]));
    assert_ne!(phone_header["kid"], access_header["kid"]);
    assert_eq!(phone_claims["iss"], app.issuer);
    assert_eq!(access_claims["iss"], app.issuer);
}

#[tokio::test]
async fn keys_and_tokens_survive_a_restart() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550171").await;
    let before = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap();
    let config = Config {
        listen: "127.0.0.1:0".into(),
        database_url: app.database_url.clone(),
        issuer: Some(app.issuer.clone()),
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::starting_now());
    let dir = app.stop().await;

    let app = start(config, dir, clock).await;

    let after = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(app.exchange(&acme, &phone_token, &[]).await.status(), 200);
}

#[tokio::test]
async fn static_documents_are_served_but_never_shadow_the_generated_ones() {
    let app = spawn_app_with(|config| {
        let dir = config.well_known_dir.display().to_string();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            format!("{dir}/security.txt"),
            "Contact: mailto:security@example.test\n",
        )
        .unwrap();
        std::fs::write(
            format!("{dir}/apple-app-site-association"),
            "{\"webcredentials\":{}}",
        )
        .unwrap();
        std::fs::write(
            format!("{dir}/jwks.json"),
            "{\"keys\":[{\"kid\":\"planted\"}]}",
        )
        .unwrap();
        std::fs::write(
            format!("{dir}/openid-configuration"),
            "{\"issuer\":\"evil\"}",
        )
        .unwrap();
    })
    .await;

    let security = app.get("/.well-known/security.txt").await;
    assert_eq!(
        security.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(security.text().await.unwrap().starts_with("Contact:"));
    let aasa = app.get("/.well-known/apple-app-site-association").await;
    assert_eq!(aasa.headers()["content-type"], "application/json");
    let jwks = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap();
    assert!(!jwks.contains("planted"));
    let discovery: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], app.issuer);
    for missing in [
        "/.well-known/nothing.txt",
        "/.well-known/..%2Fcallsign.db",
        "/.well-known/.hidden",
    ] {
        let response = app.http.get(app.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_both_metadata_locations() {
    let app = spawn_app_with(|c| c.issuer = Some("http://localhost:9/tenant".into())).await;
    let acme = app.acme().await;

    let oidc = app.get("/tenant/.well-known/openid-configuration").await;
    let oauth = app
        .get("/.well-known/oauth-authorization-server/tenant")
        .await;

    let oidc: Value = oidc.json().await.unwrap();
    assert_eq!(oidc["issuer"], "http://localhost:9/tenant");
    assert_eq!(oidc["token_endpoint"], "http://localhost:9/tenant/token");
    assert_eq!(oidc, oauth.json::<Value>().await.unwrap());
    let mut form = acme.auth();
    form.push(("phone_number", "+12025550172".into()));
    let started = app
        .http
        .post(app.url("/tenant/otp/start"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let root = app
        .http
        .post(app.url("/otp/start"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 404);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn the_landing_page_is_html_that_cannot_be_framed() {
    let app = spawn_app().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(response.text().await.unwrap().contains(&app.issuer));
}

#[tokio::test]
async fn authorize_checks_client_and_redirect_uri_exactly_before_redirecting() {
    let app = spawn_app().await;
    app.audience(ORDERS, &[]).await;
    let spa = app
        .client(callsign::registry::NewClient {
            name: "demo-spa".into(),
            public: true,
            audiences: vec![ORDERS.into()],
            redirect_uris: vec!["https://app.example.test/callback".into()],
            ..Default::default()
        })
        .await;
    let authorize = |redirect: &str| {
        let mut url = reqwest::Url::parse(&app.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &spa.id)
            .append_pair("state", "s3")
            .append_pair("redirect_uri", redirect);
        app.http.get(url).send()
    };

    for evil in [
        "https://app.example.test/callback@evil.example",
        "https://app.example.test%40evil.example/callback",
        "https://app.example.test:443@evil.example/callback",
        "https://app.example.test.evil.example/callback",
        "https://app.example.test/callback/../../evil",
        "https://app.example.test/callback?next=https://evil.example",
        "https://app.example.test/callback#f",
        "//evil.example/callback",
        "http://app.example.test/callback",
    ] {
        let response = authorize(evil).await.unwrap();
        assert_eq!(response.status(), 400, "{evil}");
        assert!(response.headers().get("location").is_none(), "{evil}");
    }

    let response = authorize("https://app.example.test/callback")
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("app.example.test"));
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("state".into(), "s3".into())));
    assert!(pairs.contains(&("iss".into(), app.issuer.clone())));
    assert!(pairs.iter().any(|(k, _)| k == "error"));
    assert!(!pairs.iter().any(|(k, _)| k == "code"));

    let unknown = app
        .get("/authorize?client_id=nobody&redirect_uri=https://x.test")
        .await;
    assert_eq!(unknown.status(), 400);
}
