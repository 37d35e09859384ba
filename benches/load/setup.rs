//! Setting callsign up for the load: a configuration file in a temporary folder, an
//! audience and two clients registered through the CLI, and a fresh PostgreSQL database
//! that is dropped afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::measure::{Plan, SERVER_CORE, Server};

/// The variable naming a PostgreSQL server where the benchmark may create a database.
pub const POSTGRES_URL_VAR: &str = "CALLSIGN_TEST_POSTGRES_URL";
const AUDIENCE: &str = "https://orders.bench.example";
const SCOPE: &str = "orders:read";
/// Test numbers answer a fixed code and send no SMS (`+1 202 555 01xx` is fictional).
const TEST_NUMBERS: usize = 64;
const TEST_CODE: &str = "424242";

/// A callsign configuration with its registered clients.
pub struct Deployment {
    binary: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    /// The database callsign runs on.
    pub database_url: String,
    /// The public phone app, allowed the SMS-OTP grant and token exchange.
    pub app: String,
    /// The confidential machine client: id and secret.
    pub machine: (String, String),
    /// Test numbers and their fixed codes.
    pub numbers: Vec<(String, String)>,
}

/// A running callsign server.
pub struct Running {
    pub process: Server,
    pub base: String,
}

impl Deployment {
    /// callsign on a SQLite file in `dir`.
    pub fn sqlite(binary: &Path, dir: &Path) -> Deployment {
        let url = format!(
            "sqlite://{}",
            dir.join("sqlite").join("callsign.db").display()
        );
        Deployment::new(binary, &dir.join("sqlite"), &url)
    }

    /// callsign on the PostgreSQL database at `url`.
    pub fn postgres(binary: &Path, dir: &Path, url: &str) -> Deployment {
        Deployment::new(binary, &dir.join("postgres"), url)
    }

    fn new(binary: &Path, dir: &Path, database_url: &str) -> Deployment {
        std::fs::create_dir_all(dir).expect("a deployment folder");
        let numbers: Vec<(String, String)> = (0..TEST_NUMBERS)
            .map(|i| (format!("+120255501{i:02}"), TEST_CODE.to_owned()))
            .collect();
        let mut toml = format!(
            "database_url = {database_url:?}\n\
             well_known_dir = {:?}\n\n\
             [otp]\n\
             # Every driver task asks again as soon as it has used its code.\n\
             resend_after_seconds = 0\n\n\
             [phone_token]\n\
             ttl_seconds = 900\n\n\
             [sms.test_numbers]\n",
            dir.join("well-known").display().to_string()
        );
        for (number, code) in &numbers {
            toml.push_str(&format!("{number:?} = {code:?}\n"));
        }
        let config = dir.join("callsign.toml");
        std::fs::write(&config, toml).expect("the configuration file");
        let mut deployment = Deployment {
            binary: binary.to_owned(),
            dir: dir.to_owned(),
            config,
            database_url: database_url.to_owned(),
            app: String::new(),
            machine: (String::new(), String::new()),
            numbers,
        };
        deployment.cli(&[
            "audience",
            "create",
            "--identifier",
            AUDIENCE,
            "--scope",
            SCOPE,
        ]);
        let app = deployment.cli(&[
            "client",
            "create",
            "--name",
            "bench app",
            "--public",
            "--grant",
            "sms-otp",
            "--grant",
            "token-exchange",
            "--audience",
            AUDIENCE,
            "--scope",
            SCOPE,
        ]);
        deployment.app = text(&app["client_id"]);
        let machine = deployment.cli(&[
            "client",
            "create",
            "--name",
            "bench machine",
            "--grant",
            "client_credentials",
            "--audience",
            AUDIENCE,
            "--scope",
            SCOPE,
        ]);
        deployment.machine = (text(&machine["client_id"]), text(&machine["client_secret"]));
        deployment
    }

    /// `callsign` with this deployment's configuration and none of the caller's
    /// `CALLSIGN_` variables or log filter.
    fn command(&self, plan: Option<&Plan>) -> Command {
        let mut command = match plan {
            Some(plan) => plan.command(SERVER_CORE, &self.binary),
            None => Command::new(&self.binary),
        };
        command.current_dir(&self.dir).env_remove("RUST_LOG");
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CALLSIGN_")) {
            command.env_remove(name);
        }
        command.arg("--config").arg(&self.config).arg("--json");
        command
    }

    fn cli(&self, args: &[&str]) -> Value {
        let output = self
            .command(None)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("callsign runs");
        assert!(
            output.status.success(),
            "callsign {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("callsign prints JSON")
    }

    /// Starts `callsign serve` pinned to the server core, logging to `<name>.log`.
    pub fn start(&self, plan: &Plan, name: &str) -> Running {
        let mut command = self.command(Some(plan));
        command.env("CALLSIGN_LISTEN", "127.0.0.1:0").arg("serve");
        let mut process = Server::start(command, &self.dir.join(format!("{name}.log")));
        let started: Value = serde_json::from_str(&process.next_line()).expect("a start line");
        let base = format!("http://{}", text(&started["listening"]));
        Running { process, base }
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .expect("a string in callsign's output")
        .to_owned()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// The JWKS document exactly as callsign serves it.
pub fn fetch_jwks(base: &str) -> Vec<u8> {
    block_on(async {
        let response = reqwest::get(format!("{base}/.well-known/jwks.json"))
            .await
            .and_then(|r| r.error_for_status())
            .expect("the JWKS");
        response.bytes().await.expect("the JWKS body").to_vec()
    })
}

/// A phone token for `client_id`, through `POST /otp/start` and the SMS-OTP grant.
pub fn phone_token(base: &str, client_id: &str, (number, code): &(String, String)) -> String {
    let http = reqwest::Client::new();
    let grant = [
        ("grant_type", callsign::grants::SMS_OTP_GRANT),
        ("client_id", client_id),
        ("phone_number", number),
        ("otp", code),
    ];
    let token: Value = block_on(async {
        http.post(format!("{base}/otp/start"))
            .form(&[("client_id", client_id), ("phone_number", number)])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("an OTP start");
        let response = http
            .post(format!("{base}/token"))
            .form(&grant)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("a phone token");
        response.json().await.expect("a token response")
    });
    text(&token["access_token"])
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A token-exchange request body; a phone token may be exchanged again within its life.
pub fn exchange_form(client_id: &str, subject_token: &str) -> String {
    form(&[
        ("grant_type", callsign::grants::TOKEN_EXCHANGE_GRANT),
        ("client_id", client_id),
        ("subject_token", subject_token),
        ("subject_token_type", callsign::grants::PHONE_TOKEN_TYPE),
        ("audience", AUDIENCE),
        ("scope", SCOPE),
    ])
}

/// A `client_credentials` request body with `client_secret_post` authentication.
pub fn client_credentials_form(client_id: &str, secret: &str) -> String {
    form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("audience", AUDIENCE),
        ("scope", SCOPE),
    ])
}

/// A database created for this run on the PostgreSQL server, dropped with this value.
pub struct PostgresDatabase {
    server: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    pub fn create(server: &str) -> PostgresDatabase {
        let name = format!(
            "callsign_bench_{}",
            callsign::crypto::random_id("")
                .to_lowercase()
                .replace(['-', '_'], "")
        );
        admin(server, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(server).expect("a PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        PostgresDatabase {
            server: server.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    /// Drops the database, ending any connection a server left behind.
    fn drop(&mut self) {
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn admin(server: &str, statement: &str) {
    block_on(async {
        let pool = sqlx::PgPool::connect(server).await.unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL is unreachable: {e}")
        });
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        pool.close().await;
    });
}
