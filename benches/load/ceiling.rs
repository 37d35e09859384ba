//! The ceilings: servers that do the least each kind of request needs, on the same
//! framework, runtime, JSON and crypto libraries as callsign, with no database and no
//! logging. A callsign endpoint's figure divided by its ceiling's says how much of the
//! cost is callsign's own work (storage, checks, logging) rather than HTTP and signatures.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

const ISSUER: &str = "http://ceiling.bench";

/// What a ceiling server can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `GET /.well-known/jwks.json` answers a fixed JSON document.
    Static,
    /// `POST /token` verifies one ES256 token from the form and signs one ES256 token.
    VerifySign,
    /// `POST /token` signs one ES256 token.
    Sign,
    /// `POST /otp/start` stores a challenge and `POST /token` consumes it: one SQL
    /// statement each, on the database callsign is measured on.
    OtpSql,
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "static" => Some(Mode::Static),
            "verify-sign" => Some(Mode::VerifySign),
            "sign" => Some(Mode::Sign),
            "otp-sql" => Some(Mode::OtpSql),
            _ => None,
        }
    }
}

/// Keys of the same kind callsign uses by default (P-256), parsed once.
struct Signer {
    subject_kid: String,
    subject_pair: EcdsaKeyPair,
    subject_key: DecodingKey,
    access_kid: String,
    access_pair: EcdsaKeyPair,
    rng: SystemRandom,
}

/// The claims verified in a subject token, the same fields as a phone token.
#[derive(Serialize, Deserialize)]
struct SubjectClaims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: String,
    phone_number: String,
    phone_number_verified: bool,
    amr: Vec<String>,
}

/// The claims signed, the same fields as an RFC 9068 access token.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    amr: Vec<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// The ceiling is not the application: it has no injected clock to take time from.
#[allow(clippy::disallowed_methods)]
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn new_pair(rng: &SystemRandom) -> EcdsaKeyPair {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).expect("a P-256 key");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .expect("a generated key parses")
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let subject_pair = new_pair(&rng);
        let point = subject_pair.public_key().as_ref();
        let subject_key =
            DecodingKey::from_ec_components(&b64(&point[1..33]), &b64(&point[33..65]))
                .expect("a P-256 public key");
        Signer {
            subject_kid: b64(&random::<16>(&rng)),
            subject_pair,
            subject_key,
            access_kid: b64(&random::<16>(&rng)),
            access_pair: new_pair(&rng),
            rng,
        }
    }

    fn sign(&self, pair: &EcdsaKeyPair, kid: &str, typ: &str, claims: &impl Serialize) -> String {
        let header = json!({"alg": "ES256", "typ": typ, "kid": kid});
        let header = serde_json::to_vec(&header).expect("a header serialises");
        let claims = serde_json::to_vec(claims).expect("claims serialise");
        let mut jws = format!("{}.{}", b64(&header), b64(&claims));
        let signature = pair.sign(&self.rng, jws.as_bytes()).expect("signing works");
        jws.push('.');
        jws.push_str(&b64(signature.as_ref()));
        jws
    }

    /// A subject token the verify-and-sign ceiling accepts, like a phone token.
    fn subject_token(&self) -> String {
        let now = now();
        let claims = SubjectClaims {
            iss: ISSUER.into(),
            sub: "ph_bench".into(),
            aud: vec![ISSUER.into()],
            exp: now + 3600,
            iat: now,
            jti: b64(&random::<16>(&self.rng)),
            client_id: "bench".into(),
            phone_number: "+12025550100".into(),
            phone_number_verified: true,
            amr: vec!["sms".into(), "otp".into()],
        };
        self.sign(
            &self.subject_pair,
            &self.subject_kid,
            "phone-token+jwt",
            &claims,
        )
    }

    fn access_token(&self, sub: &str, auth_time: Option<i64>, amr: Vec<String>) -> Response {
        let now = now();
        let claims = AccessClaims {
            iss: ISSUER,
            sub,
            aud: "https://orders.bench.example",
            exp: now + 300,
            iat: now,
            jti: b64(&random::<16>(&self.rng)),
            client_id: "bench",
            scope: "orders:read",
            auth_time,
            amr,
        };
        let token = self.sign(&self.access_pair, &self.access_kid, "at+jwt", &claims);
        no_store(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "orders:read",
        }))
    }
}

fn random<const N: usize>(rng: &SystemRandom) -> [u8; N] {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes)
        .expect("the system random generator works");
    bytes
}

fn no_store(value: serde_json::Value) -> Response {
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn verify_and_sign(State(signer): State<Arc<Signer>>, body: Bytes) -> Response {
    let Some(token) = field(&body, "subject_token") else {
        return (axum::http::StatusCode::BAD_REQUEST, "no subject_token").into_response();
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims =
        match jsonwebtoken::decode::<SubjectClaims>(&token, &signer.subject_key, &validation) {
            Ok(data) => data.claims,
            Err(_) => return (axum::http::StatusCode::BAD_REQUEST, "bad token").into_response(),
        };
    signer.access_token(&claims.sub, Some(claims.iat), claims.amr)
}

async fn sign_only(State(signer): State<Arc<Signer>>, body: Bytes) -> Response {
    let Some(client_id) = field(&body, "client_id") else {
        return (axum::http::StatusCode::BAD_REQUEST, "no client_id").into_response();
    };
    signer.access_token(&client_id, None, Vec::new())
}

/// The OTP ceiling's database: the same pool settings as callsign's, one table.
enum OtpStore {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

const OTP_TABLE: &str = r#"
    CREATE TABLE IF NOT EXISTS ceiling_challenges (
        phone        TEXT PRIMARY KEY NOT NULL,
        code         TEXT NOT NULL,
        expires_at   BIGINT NOT NULL,
        consumed_at  BIGINT
    )"#;
const OTP_STORE: &str = r#"
    INSERT INTO ceiling_challenges (phone, code, expires_at, consumed_at)
    VALUES ($1, $2, $3, NULL)
    ON CONFLICT (phone) DO UPDATE
    SET code = excluded.code, expires_at = excluded.expires_at, consumed_at = NULL"#;
const OTP_CONSUME: &str = r#"
    UPDATE ceiling_challenges
    SET consumed_at = $3
    WHERE phone = $1 AND code = $2 AND consumed_at IS NULL AND expires_at > $3
    RETURNING phone"#;

impl OtpStore {
    async fn open(url: &str) -> OtpStore {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        use std::str::FromStr;
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .expect("a SQLite URL")
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .expect("the SQLite file");
            OtpStore::Sqlite(pool)
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .test_before_acquire(false)
                .connect(url)
                .await
                .expect("the PostgreSQL database");
            OtpStore::Postgres(pool)
        };
        match &store {
            OtpStore::Sqlite(pool) => sqlx::query(OTP_TABLE).execute(pool).await.map(|_| ()),
            OtpStore::Postgres(pool) => sqlx::query(OTP_TABLE).execute(pool).await.map(|_| ()),
        }
        .expect("the ceiling's table");
        store
    }

    async fn store(&self, phone: &str, code: &str, expires_at: i64) -> bool {
        match self {
            OtpStore::Sqlite(pool) => sqlx::query(OTP_STORE)
                .bind(phone)
                .bind(code)
                .bind(expires_at)
                .execute(pool)
                .await
                .is_ok(),
            OtpStore::Postgres(pool) => sqlx::query(OTP_STORE)
                .bind(phone)
                .bind(code)
                .bind(expires_at)
                .execute(pool)
                .await
                .is_ok(),
        }
    }

    async fn consume(&self, phone: &str, code: &str, now: i64) -> bool {
        match self {
            OtpStore::Sqlite(pool) => sqlx::query_scalar::<_, String>(OTP_CONSUME)
                .bind(phone)
                .bind(code)
                .bind(now)
                .fetch_optional(pool)
                .await
                .is_ok_and(|row| row.is_some()),
            OtpStore::Postgres(pool) => sqlx::query_scalar::<_, String>(OTP_CONSUME)
                .bind(phone)
                .bind(code)
                .bind(now)
                .fetch_optional(pool)
                .await
                .is_ok_and(|row| row.is_some()),
        }
    }
}

/// The code every test number of the benchmark answers.
const OTP_CODE: &str = "424242";

async fn otp_start(State(store): State<Arc<OtpStore>>, body: Bytes) -> Response {
    let Some(phone) = field(&body, "phone_number") else {
        return (axum::http::StatusCode::BAD_REQUEST, "no phone_number").into_response();
    };
    if store.store(&phone, OTP_CODE, now() + 300).await {
        no_store(json!({"expires_in": 300}))
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

async fn otp_grant(State(store): State<Arc<OtpStore>>, body: Bytes) -> Response {
    let (Some(phone), Some(code)) = (field(&body, "phone_number"), field(&body, "otp")) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "no phone_number or otp",
        )
            .into_response();
    };
    if store.consume(&phone, &code, now()).await {
        no_store(json!({"verified": true}))
    } else {
        (axum::http::StatusCode::BAD_REQUEST, "no live challenge").into_response()
    }
}

/// Serves `mode` on an ephemeral port of 127.0.0.1 until killed. The first line on
/// standard output is the address; for the verify-and-sign ceiling the second is a
/// subject token it accepts. `argument` is the document of the static ceiling and the
/// database URL of the OTP ceiling.
pub fn serve(mode: Mode, argument: Option<String>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let signer = Arc::new(Signer::new());
        let router = match mode {
            Mode::Static => {
                let path = argument.expect("a document to serve");
                let document = Bytes::from(std::fs::read(path).expect("the document"));
                Router::new().route(
                    "/.well-known/jwks.json",
                    get(move || {
                        let document = document.clone();
                        async move {
                            (
                                [
                                    (header::CONTENT_TYPE, "application/json"),
                                    (header::CACHE_CONTROL, "public, max-age=300"),
                                ],
                                document,
                            )
                        }
                    }),
                )
            }
            Mode::VerifySign => Router::new()
                .route("/token", post(verify_and_sign))
                .with_state(signer.clone()),
            Mode::Sign => Router::new()
                .route("/token", post(sign_only))
                .with_state(signer.clone()),
            Mode::OtpSql => {
                let url = argument.expect("a database URL");
                let store = Arc::new(OtpStore::open(&url).await);
                Router::new()
                    .route("/otp/start", post(otp_start))
                    .route("/token", post(otp_grant))
                    .with_state(store)
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        println!("{}", listener.local_addr().expect("an address"));
        println!("{}", signer.subject_token());
        axum::serve(listener, router)
            .await
            .expect("the ceiling serves");
    });
}
