//! The `callsign` binary, run as an operator would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub fn callsign(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callsign"));
    command.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CALLSIGN_")) {
        command.env_remove(name);
    }
    command
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

pub fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[test]
fn an_operator_registers_an_audience_and_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();

    let migrated = json(&callsign(path, &["--json", "migrate"], &[]));
    assert_eq!(migrated["backend"], "sqlite");
    assert!(path.join("callsign.db").exists());

    let audience = json(&callsign(
        path,
        &[
            "--json",
            "audience",
            "create",
            "--identifier",
            "https://orders.api.example.test",
            "--scope",
            "orders:read",
            "--scope",
            "orders:write",
            "--ttl",
            "600",
        ],
        &[],
    ));
    assert_eq!(
        audience["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
    assert_eq!(audience["ttl"], 600);

    let public = json(&callsign(
        path,
        &[
            "--json",
            "client",
            "create",
            "--name",
            "demo",
            "--public",
            "--audience",
            "https://orders.api.example.test",
            "--scope",
            "orders:read",
        ],
        &[],
    ));
    assert!(public["client_secret"].is_null());
    assert_eq!(public["type"], "public");
    assert_eq!(
        public["default_audience"],
        "https://orders.api.example.test"
    );

    let confidential = json(&callsign(
        path,
        &[
            "--json",
            "client",
            "create",
            "--name",
            "backend",
            "--grant",
            "sms-otp",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--audience",
            "https://orders.api.example.test",
        ],
        &[],
    ));
    let secret = confidential["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(
        confidential["grant_types"],
        serde_json::json!([
            "urn:callsign:params:oauth:grant-type:sms-otp",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    let database = std::fs::read(path.join("callsign.db")).unwrap();
    let wal = std::fs::read(path.join("callsign.db-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "stored in clear"
        );
    }

    let text = callsign(
        path,
        &["client", "create", "--name", "again", "--public"],
        &[],
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("client_id: cl_"), "{text}");
}

#[test]
fn registration_mistakes_are_explained_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();

    let unknown = callsign(
        path,
        &[
            "client",
            "create",
            "--name",
            "x",
            "--audience",
            "https://nowhere.test",
        ],
        &[],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not registered"));

    let grant = callsign(
        path,
        &["client", "create", "--name", "x", "--grant", "password"],
        &[],
    );
    assert!(!grant.status.success());
    assert!(String::from_utf8_lossy(&grant.stderr).contains("password"));

    callsign(path, &["audience", "create", "--identifier", "orders"], &[]);
    let twice = callsign(
        path,
        &["--json", "audience", "create", "--identifier", "orders"],
        &[],
    );
    assert!(!twice.status.success());
    let error: Value = serde_json::from_slice(&twice.stdout).unwrap();
    assert!(error["error"].as_str().unwrap().contains("already exists"));
}

#[test]
fn keys_list_shows_one_active_key_per_purpose_and_they_persist() {
    let dir = tempfile::tempdir().unwrap();

    let first = json(&callsign(dir.path(), &["--json", "keys", "list"], &[]));
    let second = json(&callsign(dir.path(), &["--json", "keys", "list"], &[]));

    assert_eq!(first, second);
    let keys = first["keys"].as_array().unwrap();
    let mut purposes: Vec<&str> = keys
        .iter()
        .map(|k| k["purpose"].as_str().unwrap())
        .collect();
    purposes.sort();
    assert_eq!(purposes, ["access_token", "id_token", "phone_token"]);
    assert!(keys.iter().all(|k| k["state"] == "active"));
    let algorithm =
        |purpose: &str| keys.iter().find(|k| k["purpose"] == purpose).unwrap()["algorithm"].clone();
    assert_eq!(
        (algorithm("phone_token"), algorithm("access_token")),
        ("ES256".into(), "ES256".into())
    );
    assert_eq!(
        algorithm("id_token"),
        "RS256",
        "OpenID Connect requires RS256 ID tokens"
    );
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("callsign.toml"), "[otp]\nmax_attempt = 3\n").unwrap();
    let output = callsign(dir.path(), &["migrate"], &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_attempt"));

    std::fs::write(dir.path().join("callsign.toml"), "").unwrap();
    let output = callsign(
        dir.path(),
        &["migrate"],
        &[("CALLSIGN_OTP__MAX_ATTEMPTS", "0")],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("otp.max_attempts"));

    let other = dir.path().join("other.toml");
    std::fs::write(&other, "database_url = \"sqlite://other.db\"\n").unwrap();
    let output = callsign(
        dir.path(),
        &["--config", other.to_str().unwrap(), "migrate"],
        &[],
    );
    assert!(output.status.success());
    assert!(dir.path().join("other.db").exists());
}

#[test]
fn serve_starts_on_the_embedded_default_and_prints_where_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callsign"))
        .current_dir(dir.path())
        .args(["--json", "serve"])
        .env("CALLSIGN_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let started: Value = serde_json::from_str(&line).unwrap();
    let issuer = started["issuer"].as_str().unwrap().to_owned();
    let health = std::net::TcpStream::connect(started["listening"].as_str().unwrap());
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(health.is_ok());
    assert!(issuer.starts_with("http://127.0.0.1:"));
    assert!(dir.path().join("callsign.db").exists());
}

#[test]
fn an_operator_grants_and_takes_back_the_admin_console() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();

    let granted = json(&callsign(
        path,
        &["--json", "admin", "grant", "--phone", "+1 202 555 0160"],
        &[],
    ));
    assert_eq!(granted["phone_number"], "+12025550160");
    assert_eq!(granted["granted"], true);
    assert_eq!(granted["changed"], true);
    assert_eq!(granted["created_user"], true);
    let user_id = granted["user_id"].as_str().unwrap().to_owned();

    let again = json(&callsign(
        path,
        &["--json", "admin", "grant", "--phone", "+12025550160"],
        &[],
    ));
    assert_eq!(again["user_id"], user_id.as_str());
    assert_eq!(again["changed"], false);
    assert_eq!(again["created_user"], false);

    let revoked = json(&callsign(
        path,
        &[
            "--json",
            "admin",
            "grant",
            "--phone",
            "+12025550160",
            "--revoke",
        ],
        &[],
    ));
    assert_eq!(revoked["granted"], false);
    assert_eq!(revoked["changed"], true);
    assert_eq!(revoked["user_id"], user_id.as_str());

    let text = callsign(path, &["admin", "grant", "--phone", "+12025550160"], &[]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("now holds the admin role"), "{text}");

    let bad = callsign(path, &["admin", "grant", "--phone", "not a phone"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--phone"));
}
