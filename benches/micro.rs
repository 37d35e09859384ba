//! `cargo bench --bench micro`: what the parts of a token request cost on their own, with
//! criterion. Access-token signing is measured beside the bare aws-lc-rs signature of a
//! message of the same length, so the overhead of building the JWS shows directly (the
//! target is at most 1.25 times the bare signature). See `docs/benchmarks.md`.

use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use callsign::clients::{AuthMethod, ClientCredentials, authenticate};
use callsign::clock::{Clock, SystemClock};
use callsign::crypto::constant_time_eq;
use callsign::keys::{Algorithm, KeyProtector, KeySettings, Keys, Purpose};
use callsign::phone::Phone;
use callsign::registry::{self, NewAudience, NewClient};
use callsign::store::Store;
use callsign::tokens::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Audience, PHONE_TOKEN_TYP, PhoneTokenClaims,
    verify_phone_token,
};
use criterion::{Criterion, criterion_group, criterion_main};

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "https://orders.api.example.test";

/// A SQLite store in a temporary folder with one audience and one confidential client, and
/// the keys of a fresh server.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    keys: Keys,
    credentials: ClientCredentials,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url).await.expect("the store");
    let clock = SystemClock;
    let audience = NewAudience {
        identifier: AUDIENCE.into(),
        scopes: vec!["orders:read".into()],
        ttl: None,
    };
    registry::create_audience(&store, &clock, audience)
        .await
        .expect("the audience");
    let client = NewClient {
        name: "bench".into(),
        public: false,
        grants: vec!["client_credentials".into()],
        audiences: vec![AUDIENCE.into()],
        default_audience: Some(AUDIENCE.into()),
        scopes: vec!["orders:read".into()],
        redirect_uris: Vec::new(),
        first_party: false,
    };
    let created = registry::create_client(&store, &clock, client)
        .await
        .expect("the client");
    let credentials = ClientCredentials {
        client_id: created.client.id.clone(),
        secret: created.secret,
        method: AuthMethod::Post,
    };
    let settings = KeySettings {
        phone_token_algorithm: Algorithm::Es256,
        access_token_algorithm: Algorithm::Es256,
        id_token_algorithm: Algorithm::Rs256,
        rotation_period: 0,
        jwks_max_age: 300,
        refresh_interval: 30,
        phone_token_ttl: 900,
        id_token_ttl: 300,
        protector: KeyProtector::new(None),
    };
    let keys = Keys::start(store.clone(), Arc::new(clock), settings, "bench")
        .await
        .expect("the keys");
    Fixture {
        _dir: dir,
        store,
        keys,
        credentials,
    }
}

fn access_claims(now: i64) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "usr_4kT0c1mXbq2yVd8wZr5nAg".into(),
        aud: Audience::One(AUDIENCE.into()),
        exp: now + 300,
        iat: now,
        jti: "Jx3q9Vw2Lr0mTz8bYc4kNa".into(),
        client_id: "cl_Qm8s2Xv0Pz4rLk1wYt7eBd".into(),
        scope: Some("orders:read".into()),
        auth_time: Some(now),
        amr: vec!["sms".into(), "otp".into()],
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let fixture = runtime.block_on(fixture());
    let now = SystemClock.now();
    let ring = fixture.keys.current();

    // Client authentication: the secret check alone, then with the client's lookup.
    let secret = fixture.credentials.secret.clone().expect("a secret");
    let stored = secret.hash();
    c.bench_function("client_secret_check", |b| {
        b.iter(|| constant_time_eq(&black_box(&secret).hash(), black_box(&stored)))
    });
    c.bench_function("client_authentication_sqlite", |b| {
        b.iter(|| {
            runtime
                .block_on(authenticate(
                    &fixture.store,
                    black_box(&fixture.credentials),
                ))
                .expect("authenticated")
        })
    });

    // Phone-token verification: header, key, typ, signature, claims.
    let phone_claims = PhoneTokenClaims {
        iss: ISSUER.into(),
        sub: "ph_8yW1nQv3Tk0mZr6cXb2dLa".into(),
        aud: vec![ISSUER.into()],
        exp: now + 900,
        iat: now,
        jti: "Pq2w8Er4Ty6Ui0Op1As3Df".into(),
        client_id: fixture.credentials.client_id.clone(),
        phone_number: "+12025550190".into(),
        phone_number_verified: true,
        amr: vec!["sms".into(), "otp".into()],
        scope: None,
    };
    let phone_token = ring
        .active(Purpose::PhoneToken)
        .sign(PHONE_TOKEN_TYP, &phone_claims)
        .expect("a phone token");
    c.bench_function("phone_token_verification", |b| {
        b.iter(|| {
            verify_phone_token(&ring, ISSUER, black_box(&phone_token), now).expect("verified")
        })
    });

    // Access-token signing against the bare signature of a message of the same length.
    let key = ring.active(Purpose::AccessToken);
    let claims = access_claims(now);
    let token = key.sign(ACCESS_TOKEN_TYP, &claims).expect("a token");
    let message = token.rsplit_once('.').expect("a compact JWS").0.to_owned();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let raw = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let mut group = c.benchmark_group("es256");
    group.bench_function("access_token_signing", |b| {
        b.iter(|| {
            key.sign(ACCESS_TOKEN_TYP, black_box(&claims))
                .expect("signed")
        })
    });
    group.bench_function("raw_aws_lc_rs_signature", |b| {
        b.iter(|| {
            raw.sign(&rng, black_box(message.as_bytes()))
                .expect("signed")
        })
    });
    group.finish();

    // Phone parsing, international and national spellings.
    c.bench_function("phone_parse_international", |b| {
        b.iter(|| Phone::parse(black_box("+1 (202) 555-0100"), None).expect("valid"))
    });
    c.bench_function("phone_parse_national", |b| {
        let region = Some(phonenumber::country::Id::GB);
        b.iter(|| Phone::parse(black_box("07911 123456"), region).expect("valid"))
    });
}

criterion_group! {
    name = micro;
    config = Criterion::default().sample_size(50);
    targets = benches
}
criterion_main!(micro);
