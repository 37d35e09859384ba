//! `GET /metrics`: Prometheus text counters per server, labelled by client, region and
//! reason, never by phone number or code.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn metrics(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/openmetrics-text"));
    response.text().await.unwrap()
}

#[tokio::test]
async fn sends_verifications_and_refusals_are_counted_without_numbers_or_codes() {
    let app = spawn_app_with(|c| c.limits.denied_regions = vec!["DE".into()]).await;
    let acme = app.acme().await;
    let id = &acme.id;

    app.start_otp(&acme, "+12025550170").await;
    let code = app.sms.latest_code("+12025550170");
    app.otp_grant(&acme, "+12025550170", "999999").await;
    app.otp_grant(&acme, "+12025550170", &code).await;
    app.start_otp(&acme, "+12025550170").await;
    app.start_otp(&acme, "+4915123456789").await;
    let text = metrics(&app).await;

    let refusal = |reason: &str, region: &str| {
        let labels = format!(r#"reason="{reason}",client="{id}",region="{region}""#);
        format!("callsign_otp_refusals_total{{{labels}}} 1")
    };
    for line in [
        format!(r#"callsign_otp_sends_total{{client="{id}",region="US"}} 1"#),
        format!(r#"callsign_otp_verifications_total{{client="{id}",result="failed"}} 1"#),
        format!(r#"callsign_otp_verifications_total{{client="{id}",result="succeeded"}} 1"#),
        refusal("cooldown", "US"),
        refusal("region_not_allowed", "DE"),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    for secret in ["2025550170", "15123456789", code.as_str()] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
}

#[tokio::test]
async fn two_servers_in_one_process_keep_their_own_counters() {
    let first = spawn_app().await;
    let second = spawn_app().await;
    let acme = first.acme().await;

    first.start_otp(&acme, "+12025550171").await;

    assert!(metrics(&first).await.contains("callsign_otp_sends_total{"));
    assert!(!metrics(&second).await.contains("callsign_otp_sends_total{"));
}
