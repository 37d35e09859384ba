//! What the logs of a whole flow may contain: never a code, a token, a client secret or a
//! full phone number. The real binary runs with every log level on, and everything it
//! writes to standard error is read.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{RunningBinary, callsign_command, peek};

fn callsign(dir: &Path) -> std::process::Command {
    let mut command = callsign_command(dir);
    command
        .env("RUST_LOG", "trace")
        .env("CALLSIGN_OTP__LENGTH", "10");
    command
}

/// Runs a CLI command, returning its JSON answer and what it logged.
fn run(dir: &Path, args: &[&str]) -> (Value, String) {
    let output = callsign(dir).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        serde_json::from_slice(&output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_full_flow_logs_no_code_token_secret_or_phone_number() {
    let dir = tempfile::tempdir().unwrap();
    let orders = "https://orders.api.example.test";
    let (_, mut logs) = run(
        dir.path(),
        &["--json", "audience", "create", "--identifier", orders],
    );
    let (client, client_logs) = run(
        dir.path(),
        &[
            "--json",
            "client",
            "create",
            "--name",
            "acme",
            "--audience",
            orders,
        ],
    );
    logs.push_str(&client_logs);
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let mut serve = callsign(dir.path());
    serve.args(["--json", "serve"]);
    let server = RunningBinary::start(serve);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let phone = "+12025550190";
    let post =
        |form: Vec<(&'static str, String)>| http.post(format!("{base}/token")).form(&form).send();
    let auth = || {
        vec![
            ("client_id", client_id.clone()),
            ("client_secret", secret.clone()),
        ]
    };

    let mut form = auth();
    form.push(("phone_number", phone.to_owned()));
    let response = http
        .post(format!("{base}/otp/start"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sms = server.next_line();
    let code = sms.split("code is ").nth(1).unwrap()[..10].to_owned();
    let grant = |otp: &str| {
        let mut form = auth();
        form.extend([
            (
                "grant_type",
                "urn:callsign:params:oauth:grant-type:sms-otp".to_owned(),
            ),
            ("phone_number", phone.to_owned()),
            ("otp", otp.to_owned()),
        ]);
        form
    };
    assert_eq!(post(grant("0000000000")).await.unwrap().status(), 400);
    let granted: Value = post(grant(&code)).await.unwrap().json().await.unwrap();
    let phone_token = granted["access_token"].as_str().unwrap().to_owned();
    let exchange = |token: &str| {
        let mut form = auth();
        form.extend([
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token", token.to_owned()),
            (
                "subject_token_type",
                "urn:callsign:params:oauth:token-type:phone_token".to_owned(),
            ),
        ]);
        form
    };
    let exchanged: Value = post(exchange(&phone_token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = exchanged["access_token"].as_str().unwrap().to_owned();
    assert_eq!(post(exchange(&access_token)).await.unwrap().status(), 400);
    let basic = http
        .post(format!("{base}/token"))
        .basic_auth(&client_id, Some("wrong-secret-value"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    logs.push_str(&server.stop());

    assert!(
        logs.contains("phone token issued") && logs.contains("access token issued"),
        "{logs}"
    );
    assert!(
        logs.contains("+1••••••••90"),
        "the phone appears masked:\n{logs}"
    );
    let signature = |token: &str| token.rsplit('.').next().unwrap().to_owned();
    for secret_value in [
        code.as_str(),
        phone,
        "2025550190",
        &phone_token,
        &signature(&phone_token),
        &access_token,
        &signature(&access_token),
        &secret,
        "wrong-secret-value",
    ] {
        assert!(
            !logs.contains(secret_value),
            "the logs contain {secret_value:?}:\n{logs}"
        );
    }
}

/// Registers a client of one audience and serves, at the default log level, in `format`;
/// makes a `client_credentials` request and an unauthenticated one, and returns the issued
/// token's `jti`, the client id and everything logged.
async fn token_requests_logged(format: &str) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let orders = "https://orders.api.example.test";
    let quiet = |args: &[&str]| {
        let output = callsign_command(dir.path()).args(args).output().unwrap();
        assert!(output.status.success());
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    quiet(&["--json", "audience", "create", "--identifier", orders]);
    let client = quiet(&[
        "--json",
        "client",
        "create",
        "--name",
        "acme",
        "--grant",
        "client_credentials",
        "--audience",
        orders,
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let mut serve = callsign_command(dir.path());
    serve
        .env("CALLSIGN_LOG__FORMAT", format)
        .args(["--json", "serve"]);
    let server = RunningBinary::start(serve);
    let http = reqwest::Client::new();
    let issued: Value = http
        .post(format!("{}/token", server.base))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["access_token"].as_str().unwrap();
    let (_, claims) = peek(token);
    let refused = http
        .get(format!("{}/userinfo?code=querysecretvalue", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let logs = server.stop();
    assert!(!logs.contains(&secret) && !logs.contains(token) && !logs.contains("querysecretvalue"));
    (claims["jti"].as_str().unwrap().to_owned(), client_id, logs)
}

#[tokio::test]
async fn each_request_has_one_access_line_naming_route_status_client_and_token() {
    let (jti, client_id, logs) = token_requests_logged("text").await;
    let access: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(" INFO callsign::access: request "))
        .collect();
    assert_eq!(access.len(), 2, "{logs}");
    let token = access[0];
    assert!(
        token.contains(" method=POST route=/token status=200 latency_us=")
            && token.ends_with(&format!(" client_id={client_id} jti={jti}")),
        "{token}"
    );
    assert!(
        access[1].contains(" method=GET route=/userinfo status=401 latency_us="),
        "{}",
        access[1]
    );
    // The timestamp leads, in UTC, as on every other line.
    let stamp = token.split(' ').next().unwrap();
    assert!(stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T');
}

#[tokio::test]
async fn access_lines_in_json_carry_the_same_fields() {
    let (jti, client_id, logs) = token_requests_logged("json").await;
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|line: &Value| line["target"] == "callsign::access")
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    let fields = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(fields["message"], "request");
    assert_eq!(fields["method"], "POST");
    assert_eq!(fields["route"], "/token");
    assert_eq!(fields["status"], 200);
    assert!(fields["latency_us"].is_u64());
    assert_eq!(fields["client_id"], client_id.as_str());
    assert_eq!(fields["jti"], jti.as_str());
    assert_eq!(lines[1]["fields"]["status"], 401);
    assert!(lines[1]["fields"].get("client_id").is_none());
    assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
}
