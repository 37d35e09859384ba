//! Times are whole seconds since the epoch in UTC: nothing depends on the host's or the
//! database session's time zone.

use callsign::clock::{Clock, SystemClock};
use serde_json::Value;

use crate::helpers::{POSTGRES_URL_VAR, RunningBinary, callsign_command, fresh_database, peek};

async fn flow_in_time_zone(zone: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut database_url = fresh_database(&dir).await;
    if std::env::var(POSTGRES_URL_VAR).is_ok() {
        // A database session in the same far-off zone.
        database_url.push_str(&format!(
            "?options=-c%20TimeZone%3D{}",
            zone.replace('/', "%2F")
        ));
    }
    std::fs::write(
        dir.path().join("callsign.toml"),
        format!(
            "database_url = \"{database_url}\"\n[otp]\nttl_seconds = 300\n\
             [phone_token]\nttl_seconds = 120\n[sms.test_numbers]\n\"+12025550122\" = \"424242\"\n"
        ),
    )
    .unwrap();
    let register = |args: &[&str]| {
        let output = callsign_command(dir.path())
            .env("TZ", zone)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    register(&[
        "--json",
        "audience",
        "create",
        "--identifier",
        "orders",
        "--ttl",
        "600",
    ]);
    let client = register(&[
        "--json",
        "client",
        "create",
        "--name",
        "tz",
        "--public",
        "--audience",
        "orders",
    ]);
    let client_id = client["client_id"].as_str().unwrap();
    let mut serve = callsign_command(dir.path());
    serve.env("TZ", zone).args(["--json", "serve"]);
    let server = RunningBinary::start(serve);
    let http = reqwest::Client::new();
    let post = |path: &str, form: Vec<(&str, &str)>| {
        http.post(format!("{}{path}", server.base))
            .form(&form)
            .send()
    };

    let started = post(
        "/otp/start",
        vec![("client_id", client_id), ("phone_number", "+12025550122")],
    );
    assert_eq!(started.await.unwrap().status(), 200);
    let before = SystemClock.now();
    let granted: Value = post(
        "/token",
        vec![
            ("client_id", client_id),
            ("grant_type", "urn:callsign:params:oauth:grant-type:sms-otp"),
            ("phone_number", "+12025550122"),
            ("otp", "424242"),
        ],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let phone_token = granted["access_token"].as_str().unwrap();
    let exchanged: Value = post(
        "/token",
        vec![
            ("client_id", client_id),
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", phone_token),
            (
                "subject_token_type",
                "urn:callsign:params:oauth:token-type:phone_token",
            ),
        ],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let after = SystemClock.now();
    server.stop();

    assert_eq!(granted["expires_in"], 120, "{zone}");
    assert_eq!(exchanged["expires_in"], 600, "{zone}");
    for (token, ttl) in [
        (phone_token, 120),
        (exchanged["access_token"].as_str().unwrap(), 600),
    ] {
        let (_, claims) = peek(token);
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert!(
            claims["iat"].is_i64() && claims["exp"].is_i64(),
            "whole seconds: {claims}"
        );
        assert!(
            before - 1 <= iat && iat <= after + 1,
            "{zone}: iat {iat} is now in UTC"
        );
        assert_eq!(exp - iat, ttl, "{zone}");
        assert!(
            claims
                .get("nbf")
                .is_none_or(|nbf| nbf.as_i64().unwrap() <= iat)
        );
    }
}

#[tokio::test]
async fn tokens_carry_utc_times_in_a_zone_fourteen_hours_ahead() {
    flow_in_time_zone("Pacific/Kiritimati").await;
}

#[tokio::test]
async fn tokens_carry_utc_times_in_a_zone_ten_hours_behind() {
    flow_in_time_zone("America/Adak").await;
}
