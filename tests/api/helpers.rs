//! `spawn_app` and the `TestApp` every test drives.

use std::sync::{Arc, Mutex};

use callsign::Application;
use callsign::clock::{Clock, ManualClock};
use callsign::config::Config;
use callsign::registry::{self, NewAudience, NewClient};
use callsign::services::Services;
use callsign::sms::{SmsError, SmsMessage, SmsSender};
use serde_json::Value;
use tempfile::TempDir;

pub const SMS_OTP: &str = "urn:callsign:params:oauth:grant-type:sms-otp";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const PHONE_TOKEN_TYPE: &str = "urn:callsign:params:oauth:token-type:phone_token";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ORDERS: &str = "https://orders.api.example.test";
pub const LEDGER: &str = "https://ledger.api.example.test";

/// Records every message instead of delivering it; the tests read codes from it.
#[derive(Default)]
pub struct CaptureSms {
    sent: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl SmsSender for CaptureSms {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let entry = (message.to.e164().to_owned(), message.body().to_owned());
        self.sent.lock().unwrap().push(entry);
        Ok(())
    }
}

impl CaptureSms {
    /// Every (destination, text) sent so far.
    pub fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().unwrap().clone()
    }

    pub fn count_to(&self, e164: &str) -> usize {
        self.sent().iter().filter(|(to, _)| to == e164).count()
    }

    /// The code of the latest message to `e164`.
    pub fn latest_code(&self, e164: &str) -> String {
        let sent = self.sent();
        let (_, text) = sent
            .iter()
            .rev()
            .find(|(to, _)| to == e164)
            .unwrap_or_else(|| panic!("no SMS was sent to {e164}"));
        text.split_whitespace()
            .map(|word| word.trim_end_matches('.'))
            .find(|word| word.len() >= 6 && word.bytes().all(|b| b.is_ascii_digit()))
            .expect("the message carries a code")
            .to_owned()
    }
}

/// A registered client as the tests use it.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestClient {
    /// `client_id` and, for a confidential client, `client_secret` form fields.
    pub fn auth(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("client_id", self.id.clone())];
        if let Some(secret) = &self.secret {
            pairs.push(("client_secret", secret.clone()));
        }
        pairs
    }
}

pub struct TestApp {
    pub address: String,
    pub issuer: String,
    pub http: reqwest::Client,
    pub sms: Arc<CaptureSms>,
    pub clock: Arc<ManualClock>,
    pub services: Arc<Services>,
    pub database_url: String,
    /// The configuration the server was started with.
    pub config: Config,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A server with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The variable that sends the suite to PostgreSQL: a URL of a server and a database the
/// tests may connect to in order to create one fresh database per test.
pub const POSTGRES_URL_VAR: &str = "CALLSIGN_TEST_POSTGRES_URL";

/// A fresh, empty database for one test: a SQLite file in `dir`, or a new PostgreSQL
/// database when the suite runs against PostgreSQL.
pub async fn fresh_database(dir: &TempDir) -> String {
    let Ok(server) = std::env::var(POSTGRES_URL_VAR) else {
        return format!("sqlite://{}", dir.path().join("callsign.db").display());
    };
    let name = format!(
        "callsign_test_{}",
        callsign::crypto::random_id("")
            .to_lowercase()
            .replace(['-', '_'], "")
    );
    let admin = sqlx::PgPool::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but PostgreSQL is unreachable: {e}"));
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&admin)
        .await
        .expect("a test database");
    admin.close().await;
    let mut url = url::Url::parse(&server).expect("a PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The configuration every test server starts from: port 0, its own database and folder.
fn test_config(dir: &TempDir, database_url: String) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        database_url,
        well_known_dir: dir.path().join("well-known"),
        ..Config::default()
    }
}

/// A server whose configuration `configure` adjusts first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let database_url = fresh_database(&dir).await;
    let mut config = test_config(&dir, database_url);
    configure(&mut config);
    start(config, dir, Arc::new(ManualClock::starting_now())).await
}

/// A server that sends codes through the configured provider instead of capturing them.
pub async fn spawn_app_delivering(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let database_url = fresh_database(&dir).await;
    let mut config = test_config(&dir, database_url);
    configure(&mut config);
    launch(config, dir, Arc::new(ManualClock::starting_now()), false).await
}

/// Starts a server from a full configuration, keeping `dir` alive with it.
pub async fn start(config: Config, dir: TempDir, clock: Arc<ManualClock>) -> TestApp {
    launch(config, dir, clock, true).await
}

async fn launch(config: Config, dir: TempDir, clock: Arc<ManualClock>, capture: bool) -> TestApp {
    let settings = config.validate().expect("a valid test configuration");
    let sms = Arc::new(CaptureSms::default());
    let mut builder = Application::builder(settings).clock(clock.clone());
    if capture {
        builder = builder.sms_sender(sms.clone());
    }
    let app = builder.build().await.expect("the server starts");
    let address = format!("http://{}", app.local_addr());
    let issuer = app.issuer().to_owned();
    let services = app.services().clone();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("the server runs");
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    TestApp {
        address,
        issuer,
        http,
        sms,
        clock,
        services,
        database_url: config.database_url.clone(),
        config,
        dir,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server and waits until it has released the database.
    pub async fn stop(mut self) -> TempDir {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends cleanly");
        }
        self.services.store.close().await;
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// A second server on the same database and clock, as behind a load balancer.
    pub async fn second_instance(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = Config {
            issuer: Some(self.issuer.clone()),
            well_known_dir: dir.path().join("well-known"),
            ..self.config.clone()
        };
        start(config, dir, self.clock.clone()).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the request is sent")
    }

    /// A JSON document the server serves at `path`.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("a JSON document")
    }

    pub async fn jwks(&self) -> Value {
        let response = self
            .http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        response.json().await.expect("a JWKS")
    }

    /// Starts an OTP as if relayed by a proxy for `forwarded_for`.
    pub async fn start_otp_for(
        &self,
        client: &TestClient,
        phone: &str,
        forwarded_for: &str,
    ) -> reqwest::Response {
        let mut pairs = client.auth();
        pairs.push(("phone_number", phone.into()));
        self.http
            .post(self.url("/otp/start"))
            .header("x-forwarded-for", forwarded_for)
            .form(&pairs)
            .send()
            .await
            .expect("the request is sent")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn audience(&self, identifier: &str, scopes: &[&str]) {
        let audience = NewAudience {
            identifier: identifier.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ttl: None,
        };
        registry::create_audience(&self.services.store, self.clock.as_ref(), audience)
            .await
            .expect("the audience is registered");
    }

    pub async fn client(&self, new: NewClient) -> TestClient {
        let created = registry::create_client(&self.services.store, self.clock.as_ref(), new)
            .await
            .expect("the client is registered");
        TestClient {
            id: created.client.id,
            secret: created.secret.map(|s| s.expose().to_owned()),
        }
    }

    /// A public client allowed the phone flow, `audiences` and `scopes`.
    pub async fn public_client(&self, audiences: &[&str], scopes: &[&str]) -> TestClient {
        self.client(NewClient {
            name: "test app".into(),
            public: true,
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..NewClient::default()
        })
        .await
    }

    /// A confidential client allowed the phone flow, `audiences` and `scopes`.
    pub async fn confidential_client(&self, audiences: &[&str], scopes: &[&str]) -> TestClient {
        self.client(NewClient {
            name: "test server app".into(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..NewClient::default()
        })
        .await
    }

    /// The usual registrations: the orders and ledger APIs, and a confidential client
    /// allowed `orders:read` on the orders API only.
    pub async fn acme(&self) -> TestClient {
        self.audience(ORDERS, &["orders:read", "orders:write"])
            .await;
        self.audience(LEDGER, &["ledger:read", "ledger:admin"])
            .await;
        self.confidential_client(&[ORDERS], &["orders:read"]).await
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, String)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .form(pairs)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn start_otp(&self, client: &TestClient, phone: &str) -> reqwest::Response {
        let mut pairs = client.auth();
        pairs.push(("phone_number", phone.into()));
        self.post_form("/otp/start", &pairs).await
    }

    pub async fn otp_grant(
        &self,
        client: &TestClient,
        phone: &str,
        code: &str,
    ) -> reqwest::Response {
        let mut pairs = client.auth();
        pairs.push(("grant_type", SMS_OTP.into()));
        pairs.push(("phone_number", phone.into()));
        pairs.push(("otp", code.into()));
        self.post_form("/token", &pairs).await
    }

    /// Starts an OTP, answers it, and returns the phone token.
    pub async fn phone_token(&self, client: &TestClient, phone: &str) -> String {
        let started = self.start_otp(client, phone).await;
        assert_eq!(started.status(), 200, "{}", started.text().await.unwrap());
        let code = self.sms.latest_code(phone);
        let response = self.otp_grant(client, phone, &code).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"]
            .as_str()
            .expect("a phone token")
            .to_owned()
    }

    /// A token exchange with the phone token and any extra parameters.
    pub async fn exchange(
        &self,
        client: &TestClient,
        subject_token: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut pairs = client.auth();
        pairs.push(("grant_type", TOKEN_EXCHANGE.into()));
        pairs.push(("subject_token", subject_token.into()));
        pairs.push(("subject_token_type", PHONE_TOKEN_TYPE.into()));
        pairs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        self.post_form("/token", &pairs).await
    }

    /// Rows in a table, read through a connection of the test's own.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// One integer that `sql` selects, read through a connection of the test's own.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
            let value = sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            value
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
            let value = sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            value
        }
    }

    /// A snapshot of the tables a refused request must not change.
    pub async fn snapshot(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in [
            "users",
            "phones",
            "phone_links",
            "otp_challenges",
            "clients",
        ] {
            counts.push(self.count(table).await);
        }
        counts
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// Asserts an RFC 6749 error answer and returns its body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "wrong status");
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

/// The decoded header and claims of a compact JWT, without verifying it.
pub fn peek(token: &str) -> (Value, Value) {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let mut decode = || -> Value {
        let part = parts.next().expect("a JWT part");
        serde_json::from_slice(&engine.decode(part).expect("base64url")).expect("JSON")
    };
    (decode(), decode())
}

/// The real `callsign` binary started with `serve` in a folder of its own.
pub struct RunningBinary {
    pub base: String,
    /// Lines the server printed on standard output after its start line (console SMS).
    pub stdout: std::sync::mpsc::Receiver<String>,
    child: std::process::Child,
    /// Taken by [`RunningBinary::stop`].
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A `callsign` command in `dir` with none of the caller's `CALLSIGN_` variables.
pub fn callsign_command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_callsign"));
    command.current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CALLSIGN_")) {
        command.env_remove(name);
    }
    command
}

impl RunningBinary {
    /// Starts `command` (which must run `--json serve`) and waits for its start line.
    pub fn start(mut command: std::process::Command) -> RunningBinary {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        let mut child = command
            .env("CALLSIGN_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (sender, stdout) = std::sync::mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let first = stdout
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a start line");
        let started: Value = serde_json::from_str(&first).expect("a JSON start line");
        let base = format!("http://{}", started["listening"].as_str().unwrap());
        RunningBinary {
            base,
            stdout,
            child,
            stderr: Some(stderr),
        }
    }

    /// The next line on standard output.
    pub fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a line")
    }

    /// Stops the server with SIGTERM and returns everything it logged.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|stderr| stderr.join().ok())
            .unwrap_or_default()
    }
}

/// A test that fails before [`RunningBinary::stop`] leaves no server behind.
impl Drop for RunningBinary {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends an OpenID client library's request over real HTTP.
pub async fn oidc_send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder
        .body(response.bytes().await?.to_vec())
        .expect("a response"))
}

/// A browser on the sign-in pages: keeps the sign-in cookie, follows nothing by itself.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let empty = pair.ends_with('=');
            self.cookie = (!empty).then_some(pair);
        }
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut request = self.app.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("the page answers");
        self.remember(&response);
        response
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.app.http.post(url).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("the page answers");
        self.remember(&response);
        response
    }

    /// Opens the sign-in pages and submits a phone number; returns the form's CSRF token.
    pub async fn enter_phone(&mut self, authorize_url: &str, phone: &str) -> String {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status(), 200, "the phone page");
        let csrf = csrf_of(&page.text().await.unwrap());
        let form = [("csrf", csrf.as_str()), ("phone_number", phone)];
        let sent = self.post(&self.app.url("/authorize/phone"), &form).await;
        assert_eq!(sent.status(), 303);
        csrf
    }

    /// Signs in through the pages from an authorization URL, allowing consent when asked,
    /// and returns where the server finally sends the browser.
    pub async fn sign_in(&mut self, authorize_url: &str, phone: &str) -> String {
        let csrf = self.enter_phone(authorize_url, phone).await;
        let e164 = callsign::phone::Phone::parse(phone, None).unwrap();
        let code = self.app.sms.latest_code(e164.e164());
        let answered = self
            .post(
                &self.app.url("/authorize/code"),
                &[("csrf", &csrf), ("otp", &code)],
            )
            .await;
        assert_eq!(answered.status(), 303);
        let next = location(&answered);
        if !next.ends_with("/authorize/consent") {
            return next;
        }
        let consent = self.get(&next).await;
        assert_eq!(consent.status(), 200);
        let allowed = self
            .post(&next, &[("csrf", &csrf), ("decision", "allow")])
            .await;
        assert_eq!(allowed.status(), 303);
        location(&allowed)
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The CSRF token of a sign-in page's form.
pub fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Introspects `token` as `client` (RFC 7662); the answer must be a 200 that is not cached.
pub async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let mut form = client.auth();
    form.push(("token", token.to_owned()));
    let response = app.post_form("/introspect", &form).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// The refresh-token grant for `client`, with any further form fields.
pub async fn refresh(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    extra: &[(&'static str, &str)],
) -> reqwest::Response {
    let mut form = client.auth();
    form.extend([
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", token.to_owned()),
    ]);
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    app.post_form("/token", &form).await
}
