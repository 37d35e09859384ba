//! Forged and confused subject tokens: the verifier trusts nothing in the token header
//! that the server's own key store does not confirm.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use callsign::keys::Purpose;
use callsign::tokens::{self, PhoneTokenClaims};
use serde_json::{Value, json};

use crate::helpers::{ORDERS, TestApp, TestClient, assert_error, peek, spawn_app};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn encode(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = encode(header, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

struct Attacker {
    pair: EcdsaKeyPair,
}

impl Attacker {
    fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        Self { pair }
    }

    fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = encode(header, claims);
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

struct Setup {
    app: TestApp,
    acme: TestClient,
    token: String,
    kid: String,
    claims: Value,
    published: Value,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let token = app.phone_token(&acme, "+12025550115").await;
    let (header, mut claims) = peek(&token);
    claims["phone_number"] = json!("+12025550116");
    let kid = header["kid"].as_str().unwrap().to_owned();
    let jwks = app.jwks().await;
    let published = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()
        .clone();
    Setup {
        app,
        acme,
        token,
        kid,
        claims,
        published,
    }
}

async fn assert_refused(setup: &Setup, forged: &str) {
    let response = setup
        .app
        .exchange(&setup.acme, forged, &[("audience", ORDERS)])
        .await;
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let s = setup().await;
    let header = json!({"alg": "none", "typ": "phone-token+jwt", "kid": s.kid});
    assert_refused(&s, &format!("{}.", encode(&header, &s.claims))).await;
    let header = json!({"alg": "none"});
    assert_refused(&s, &format!("{}.", encode(&header, &s.claims))).await;
    assert_eq!(s.app.count("users").await, 0);
}

#[tokio::test]
async fn hmac_keyed_with_the_public_key_is_refused() {
    let s = setup().await;
    let header = json!({"alg": "HS256", "typ": "phone-token+jwt", "kid": s.kid});
    let x = URL_SAFE_NO_PAD
        .decode(s.published["x"].as_str().unwrap())
        .unwrap();
    let y = URL_SAFE_NO_PAD
        .decode(s.published["y"].as_str().unwrap())
        .unwrap();
    let mut point = vec![4u8];
    point.extend(&x);
    point.extend(&y);
    // SubjectPublicKeyInfo of a P-256 key: a fixed prefix, then the point.
    let mut der = hex_decode("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.extend(&point);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );

    for key in [
        s.published.to_string().into_bytes(),
        der,
        pem.into_bytes(),
        point,
    ] {
        assert_refused(&s, &hs256(&key, &header, &s.claims)).await;
    }
}

#[tokio::test]
async fn a_key_embedded_in_the_header_is_never_used() {
    let s = setup().await;
    let attacker = Attacker::new();
    let with_kid =
        json!({"alg": "ES256", "typ": "phone-token+jwt", "kid": s.kid, "jwk": attacker.jwk()});
    let without_kid = json!({"alg": "ES256", "typ": "phone-token+jwt", "jwk": attacker.jwk()});

    assert_refused(&s, &attacker.sign(&with_kid, &s.claims)).await;
    assert_refused(&s, &attacker.sign(&without_kid, &s.claims)).await;
}

#[tokio::test]
async fn a_jku_header_is_never_fetched() {
    let s = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jku = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let attacker = Attacker::new();
    let header = json!({"alg": "ES256", "typ": "phone-token+jwt", "kid": s.kid, "jku": jku});

    assert_refused(&s, &attacker.sign(&header, &s.claims)).await;

    let fetched =
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(fetched.is_err(), "the server fetched the jku");
}

#[tokio::test]
async fn hostile_kid_values_are_refused_without_a_server_error() {
    let s = setup().await;
    let attacker = Attacker::new();
    let long = "A".repeat(2048);
    for kid in [
        "../../../../dev/null",
        "K' OR '1'='1",
        long.as_str(),
        "unknown",
        "",
    ] {
        let header = json!({"alg": "ES256", "typ": "phone-token+jwt", "kid": kid});
        assert_refused(&s, &attacker.sign(&header, &s.claims)).await;
    }
}

#[tokio::test]
async fn an_algorithm_switched_within_its_family_is_refused() {
    let s = setup().await;
    let mut parts = s.token.split('.');
    let (header, claims, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    for alg in ["ES384", "RS256", "PS256", "EdDSA"] {
        header["alg"] = json!(alg);
        let forged = format!(
            "{}.{claims}.{signature}",
            b64(header.to_string().as_bytes())
        );
        assert_refused(&s, &forged).await;
    }
}

#[tokio::test]
async fn garbage_subject_tokens_are_invalid_requests() {
    let s = setup().await;
    let huge = "a.".repeat(5_000);
    for garbage in [
        "",
        "not-a-jwt",
        "a.b.c",
        "e30.e30.",
        "....",
        "☃.☃.☃",
        huge.as_str(),
    ] {
        if garbage.is_empty() {
            continue; // an empty parameter counts as missing, covered elsewhere
        }
        assert_refused(&s, garbage).await;
    }
    // A tampered payload under the real signature.
    let mut parts: Vec<&str> = s.token.split('.').collect();
    let tampered = b64(s.claims.to_string().as_bytes());
    parts[1] = &tampered;
    assert_refused(&s, &parts.join(".")).await;
}

/// Tokens signed by the server's real phone-token key but wrong in one claim or header.
#[tokio::test]
async fn a_real_signature_does_not_excuse_a_wrong_typ_issuer_audience_or_expiry() {
    let s = setup().await;
    let (_, original) = peek(&s.token);
    let claims: PhoneTokenClaims = serde_json::from_value(original).unwrap();
    let ring = s.app.services.keys.current();
    let key = ring.active(Purpose::PhoneToken);
    let now = s.app.now();

    let wrong_iss = PhoneTokenClaims {
        iss: "https://evil.example".into(),
        ..claims.clone()
    };
    let wrong_aud = PhoneTokenClaims {
        aud: vec![ORDERS.into()],
        ..claims.clone()
    };
    let expired = PhoneTokenClaims {
        exp: now,
        ..claims.clone()
    };
    let cases = [
        key.sign("at+jwt", &claims).unwrap(),
        key.sign("JWT", &claims).unwrap(),
        key.sign(tokens::PHONE_TOKEN_TYP, &wrong_iss).unwrap(),
        key.sign(tokens::PHONE_TOKEN_TYP, &wrong_aud).unwrap(),
        key.sign(tokens::PHONE_TOKEN_TYP, &expired).unwrap(),
    ];
    for forged in cases {
        assert_refused(&s, &forged).await;
    }
    // The control: the same key and claims with the right typ pass.
    let control = key.sign(tokens::PHONE_TOKEN_TYP, &claims).unwrap();
    assert_eq!(s.app.exchange(&s.acme, &control, &[]).await.status(), 200);
}

#[tokio::test]
async fn an_access_token_is_not_a_phone_token_and_a_phone_token_is_not_an_access_token() {
    let s = setup().await;
    let response = s.app.exchange(&s.acme, &s.token, &[]).await;
    let body: Value = response.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap();

    assert_refused(&s, access_token).await;

    // Signed by the access-token key with the phone-token typ: the keys differ by purpose.
    let (_, claims) = peek(&s.token);
    let claims: PhoneTokenClaims = serde_json::from_value(claims).unwrap();
    let ring = s.app.services.keys.current();
    let access_key = ring.active(Purpose::AccessToken);
    assert_refused(
        &s,
        &access_key.sign(tokens::PHONE_TOKEN_TYP, &claims).unwrap(),
    )
    .await;

    // A resource server's check refuses the phone token.
    let services = &s.app.services;
    let verdict = tokens::verify_access_token(
        &ring,
        &services.issuer,
        Some(&services.issuer),
        &s.token,
        s.app.now(),
    );
    assert_eq!(verdict.unwrap_err(), tokens::TokenError::UnknownKid);
    let verdict = tokens::verify_access_token(
        &ring,
        &services.issuer,
        Some(ORDERS),
        access_token,
        s.app.now(),
    );
    assert!(verdict.is_ok());
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
