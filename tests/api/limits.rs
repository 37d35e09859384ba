//! Send limits of `POST /otp/start` against SMS pumping: every cap is decided
//! before the provider is called, holds under concurrency and across instances, and
//! answers the same for known and unknown phones.

use std::sync::Arc;

use callsign::config::{CapConfig, Config};

use crate::cli::{callsign, json};
use crate::helpers::{TestApp, TestClient, assert_error, spawn_app, spawn_app_with};

fn cap(max: u32) -> CapConfig {
    CapConfig {
        max,
        window_seconds: 3600,
    }
}

/// Turns every cap off, so that a test can switch on just the one it shows.
pub fn no_caps(c: &mut Config) {
    let limits = &mut c.limits;
    for cap in [
        &mut limits.per_phone,
        &mut limits.per_client,
        &mut limits.per_address,
        &mut limits.per_region,
        &mut limits.per_prefix,
    ] {
        cap.max = 0;
    }
    limits.daily_sms_budget = 0;
    limits.backoff_after = 1000;
}

fn retry_after(response: &reqwest::Response) -> i64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn statuses(app: &TestApp, client: &TestClient, phones: &[String]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for phone in phones {
        statuses.push(app.start_otp(client, phone).await.status().as_u16());
    }
    statuses
}

fn numbers(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("+120255501{n:02}")).collect()
}

#[tokio::test]
async fn ten_starts_for_one_phone_within_a_minute_send_one_code() {
    let app = spawn_app_with(|_| {}).await;
    let acme = app.acme().await;

    let mut answers = Vec::new();
    for _ in 0..10 {
        let response = app.start_otp(&acme, "+12025550102").await;
        answers.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(retry_after(&response) >= 1);
            assert_error(response, 429, "slow_down").await;
        }
        app.clock.advance(6);
    }

    // Only the first start and the one after the 30-second resend cooldown send a code.
    assert_eq!(answers, [200, 429, 429, 429, 429, 200, 429, 429, 429, 429]);
    assert_eq!(app.sms.count_to("+12025550102"), 2);
}

#[tokio::test]
async fn the_per_phone_cap_holds_across_clients() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_phone = cap(3);
    })
    .await;
    let acme = app.acme().await;
    let mut clients = vec![acme];
    for _ in 0..3 {
        clients.push(app.public_client(&[], &[]).await);
    }

    let mut answers = Vec::new();
    for client in &clients {
        answers.push(
            app.start_otp(client, "+12025550112")
                .await
                .status()
                .as_u16(),
        );
    }

    assert_eq!(answers, [200, 200, 200, 429]);
    assert_eq!(app.sms.count_to("+12025550112"), 3);
    // The window slides: an hour later the phone may be sent codes again.
    app.clock.advance(2 * 3600);
    assert_eq!(
        app.start_otp(&clients[3], "+12025550112").await.status(),
        200
    );
}

#[tokio::test]
async fn fifty_numbers_from_one_address_stop_at_the_address_cap() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_address = cap(20);
    })
    .await;
    let acme = app.acme().await;

    let answers = statuses(&app, &acme, &numbers(20..70)).await;

    assert_eq!(answers.iter().filter(|s| **s == 200).count(), 20);
    assert!(answers[20..].iter().all(|s| *s == 429), "{answers:?}");
    assert_eq!(app.sms.sent().len(), 20);
    // Another client from the same address is held by the same cap.
    let other = app.public_client(&[], &[]).await;
    let response = app.start_otp(&other, "+12025550199").await;
    assert_error(response, 429, "slow_down").await;
}

#[tokio::test]
async fn the_per_client_cap_counts_every_address() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_client = cap(3);
        c.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let acme = app.acme().await;
    let other = app.public_client(&[], &[]).await;

    let mut answers = Vec::new();
    for (n, phone) in numbers(20..25).iter().enumerate() {
        let from = format!("198.51.100.{n}");
        let response = app.start_otp_for(&acme, phone, &from).await;
        answers.push(response.status().as_u16());
    }

    assert_eq!(answers, [200, 200, 200, 429, 429]);
    assert_eq!(app.start_otp(&other, "+12025550130").await.status(), 200);
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let untrusted = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_address = cap(2);
    })
    .await;
    let acme = untrusted.acme().await;
    let mut answers = Vec::new();
    for (n, phone) in numbers(20..24).iter().enumerate() {
        // A client that forges the header is still counted by its socket address.
        let forged = format!("203.0.113.{n}");
        let response = untrusted.start_otp_for(&acme, phone, &forged).await;
        answers.push(response.status().as_u16());
    }
    assert_eq!(answers, [200, 200, 429, 429]);

    let proxied = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_address = cap(2);
        c.limits.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let acme = proxied.acme().await;
    let mut answers = Vec::new();
    for (n, phone) in numbers(20..24).iter().enumerate() {
        // Everything left of the nearest untrusted hop may be forged and is ignored.
        let chain = format!("192.0.2.{n}, 203.0.113.5");
        let response = proxied.start_otp_for(&acme, phone, &chain).await;
        answers.push(response.status().as_u16());
    }
    assert_eq!(answers, [200, 200, 429, 429]);
    let another = proxied
        .start_otp_for(&acme, "+12025550140", "203.0.113.6")
        .await;
    assert_eq!(another.status(), 200);
}

#[tokio::test]
async fn the_region_and_prefix_caps_hold_their_own_keys() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_region = cap(3);
    })
    .await;
    let acme = app.acme().await;
    let answers = statuses(&app, &acme, &numbers(20..24)).await;
    assert_eq!(answers, [200, 200, 200, 429]);
    // Another calling code has its own count.
    assert_eq!(app.start_otp(&acme, "+447400123456").await.status(), 200);

    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_prefix = cap(2);
        c.limits.prefix_digits = 9;
    })
    .await;
    let acme = app.acme().await;
    let answers = statuses(&app, &acme, &numbers(20..23)).await;
    assert_eq!(answers, [200, 200, 429]);
    assert_eq!(app.start_otp(&acme, "+12125550100").await.status(), 200);
}

#[tokio::test]
async fn regions_and_number_types_outside_the_policy_are_invalid_requests() {
    let app = spawn_app_with(|c| {
        c.limits.denied_regions = vec!["gb".into()];
    })
    .await;
    let acme = app.acme().await;

    let denied = app.start_otp(&acme, "+447400123456").await;
    let body = assert_error(denied, 400, "invalid_request").await;
    assert_eq!(
        body["error_description"],
        "codes are not sent to this region"
    );
    // Premium-rate and toll-free numbers are refused by default.
    for number in ["+19002001234", "+18002001234"] {
        let refused = app.start_otp(&acme, number).await;
        assert_error(refused, 400, "invalid_request").await;
    }
    assert!(app.sms.sent().is_empty());
    assert_eq!(app.count("otp_challenges").await, 0);

    let app = spawn_app_with(|c| c.limits.allowed_regions = vec!["US".into()]).await;
    let acme = app.acme().await;
    let outside = app.start_otp(&acme, "+4915123456789").await;
    assert_error(outside, 400, "invalid_request").await;
    assert_eq!(app.start_otp(&acme, "+12025550120").await.status(), 200);
}

#[tokio::test]
async fn internet_telephony_numbers_get_no_code_unless_the_operator_allows_them() {
    // +44 56 numbers are VoIP in the United Kingdom's numbering plan.
    let voip = "+445612345678";
    let app = spawn_app().await;
    let acme = app.acme().await;
    let refused = app.start_otp(&acme, voip).await;
    let body = assert_error(refused, 400, "invalid_request").await;
    assert_eq!(
        body["error_description"],
        "codes are not sent to this kind of number"
    );
    assert!(app.sms.sent().is_empty());
    assert_eq!(app.count("otp_challenges").await, 0);

    let app = spawn_app_with(|c| c.limits.refused_number_types.clear()).await;
    let acme = app.acme().await;
    assert_eq!(app.start_otp(&acme, voip).await.status(), 200);
    assert_eq!(app.sms.sent().len(), 1);
}

/// A wrong code that differs from `code`.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect()
}

#[tokio::test]
async fn consecutive_wrong_codes_across_challenges_lock_the_phone_until_an_operator_unlocks_it() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.otp.max_attempts = 3;
        c.otp.resend_after_seconds = 0;
        c.limits.exhausted_max = 1000;
        c.limits.max_consecutive_failures = 7;
    })
    .await;
    let acme = app.acme().await;
    let phone = "+12025550177";
    let guess_wrong = |times: usize| {
        let app = &app;
        let acme = &acme;
        async move {
            assert_eq!(app.start_otp(acme, phone).await.status(), 200);
            let code = app.sms.latest_code(phone);
            for _ in 0..times {
                let answer = app.otp_grant(acme, phone, &wrong(&code)).await;
                assert_error(answer, 400, "invalid_grant").await;
            }
            code
        }
    };

    // Six wrong codes over two challenges, then the right one: the count starts again.
    guess_wrong(3).await;
    let code = guess_wrong(3).await;
    assert_eq!(app.otp_grant(&acme, phone, &code).await.status(), 400);
    let code = guess_wrong(0).await;
    assert_eq!(app.otp_grant(&acme, phone, &code).await.status(), 200);

    // Seven in a row lock it: the live code dies with the seventh.
    guess_wrong(3).await;
    guess_wrong(3).await;
    let code = guess_wrong(1).await;
    let dead = app.otp_grant(&acme, phone, &code).await;
    assert_error(dead, 400, "invalid_grant").await;
    let sent = app.sms.sent().len();
    let refused = app.start_otp(&acme, phone).await;
    let body = assert_error(refused, 403, "access_denied").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{body}"
    );
    assert_eq!(app.sms.sent().len(), sent, "no code went out");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'phone.locked'")
            .await,
        1
    );
    // Other numbers are not affected.
    assert_eq!(app.start_otp(&acme, "+12025550178").await.status(), 200);

    let database = app.database_url.clone();
    let env = [("CALLSIGN_DATABASE_URL", database.as_str())];
    let dir = app.dir.path();
    let unlocked = json(&callsign(dir, &["--json", "phone", "unlock", phone], &env));
    assert_eq!(unlocked["unlocked"], true);
    let again = json(&callsign(dir, &["--json", "phone", "unlock", phone], &env));
    assert_eq!(again["unlocked"], false);
    let code = guess_wrong(0).await;
    assert_eq!(app.otp_grant(&acme, phone, &code).await.status(), 200);
}

#[tokio::test]
async fn the_daily_budget_stops_all_sends_until_the_next_day() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.daily_sms_budget = 3;
    })
    .await;
    let acme = app.acme().await;

    let answers = statuses(&app, &acme, &numbers(20..23)).await;
    assert_eq!(answers, [200, 200, 200]);
    let refused = app.start_otp(&acme, "+12025550123").await;
    let wait = retry_after(&refused);
    let body = assert_error(refused, 429, "slow_down").await;

    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("today"),
        "{body}"
    );
    assert!((1..=86_400).contains(&wait), "{wait}");
    assert_eq!(app.sms.sent().len(), 3);
    app.clock.advance(wait);
    assert_eq!(app.start_otp(&acme, "+12025550123").await.status(), 200);
}

#[tokio::test]
async fn unverified_sends_to_a_phone_wait_longer_and_longer() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.backoff_after = 2;
        c.limits.backoff_base_seconds = 60;
    })
    .await;
    let acme = app.acme().await;
    let phone = "+12025550150";

    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    app.clock.advance(30);
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    app.clock.advance(30);
    let early = app.start_otp(&acme, phone).await;
    assert_eq!(retry_after(&early), 30);
    assert_error(early, 429, "slow_down").await;
    app.clock.advance(30);
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    app.clock.advance(60);
    let doubled = app.start_otp(&acme, phone).await;
    assert_eq!(retry_after(&doubled), 60);
    assert_error(doubled, 429, "slow_down").await;

    // A verified phone starts again from the beginning.
    app.clock.advance(60);
    let token = app.phone_token(&acme, phone).await;
    assert!(!token.is_empty());
    app.clock.advance(30);
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    assert_eq!(app.sms.count_to(phone), 5);
}

#[tokio::test]
async fn a_phone_whose_challenges_are_exhausted_is_locked_out_for_a_while() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.otp.max_attempts = 2;
        c.limits.exhausted_max = 2;
        c.limits.exhausted_lockout_seconds = 600;
    })
    .await;
    let acme = app.acme().await;
    let phone = "+12025550151";

    for _ in 0..2 {
        assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
        for _ in 0..2 {
            let wrong = app.otp_grant(&acme, phone, "0000000").await;
            assert_error(wrong, 400, "invalid_grant").await;
        }
        app.clock.advance(30);
    }
    let locked = app.start_otp(&acme, phone).await;

    assert!((500..=600).contains(&retry_after(&locked)));
    assert_error(locked, 429, "slow_down").await;
    assert_eq!(app.sms.count_to(phone), 2);
    app.clock.advance(600);
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
}

#[tokio::test]
async fn refusals_are_the_same_for_known_and_unknown_phones() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_address = cap(2);
    })
    .await;
    let acme = app.acme().await;
    app.phone_token(&acme, "+12025550104").await;
    app.clock.advance(60);
    app.start_otp(&acme, "+12025550160").await;

    let known = app.start_otp(&acme, "+12025550104").await;
    let unknown = app.start_otp(&acme, "+12025550105").await;

    assert_eq!(known.status(), 429);
    assert_eq!(known.status(), unknown.status());
    let names = |r: &reqwest::Response| r.headers().keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&known), names(&unknown));
    assert_eq!(
        known.headers()["retry-after"],
        unknown.headers()["retry-after"]
    );
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
}

#[tokio::test]
async fn test_numbers_cost_nothing_and_their_expiry_is_kept() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_address = cap(1);
        let numbers = &mut c.sms.test_numbers;
        numbers.insert("+12025550197".into(), "111111".into());
        let expired = toml::from_str("code = \"222222\"\nexpires = \"1970-01-02\"").unwrap();
        numbers.insert("+12025550198".into(), expired);
        let open = toml::from_str("code = \"333333\"\nexpires = 2999-12-31").unwrap();
        numbers.insert("+12025550199".into(), open);
    })
    .await;
    let acme = app.acme().await;

    for _ in 0..3 {
        assert_eq!(app.start_otp(&acme, "+12025550197").await.status(), 200);
        app.clock.advance(30);
    }
    assert_eq!(app.start_otp(&acme, "+12025550199").await.status(), 200);
    assert!(app.sms.sent().is_empty());
    let fixed = app.otp_grant(&acme, "+12025550199", "333333").await;
    assert_eq!(fixed.status(), 200);

    // An expired test number is an ordinary number: a real code, sent and counted.
    assert_eq!(app.start_otp(&acme, "+12025550198").await.status(), 200);
    assert_eq!(app.sms.count_to("+12025550198"), 1);
    let stale = app.otp_grant(&acme, "+12025550198", "222222").await;
    assert_error(stale, 400, "invalid_grant").await;
    let capped = app.start_otp(&acme, "+12025550120").await;
    assert_error(capped, 429, "slow_down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_never_pass_a_cap_together() {
    let app = Arc::new(
        spawn_app_with(|c| {
            no_caps(c);
            c.limits.per_address = cap(5);
        })
        .await,
    );
    let acme = app.acme().await;

    let mut tasks = tokio::task::JoinSet::new();
    for phone in numbers(20..40) {
        let (app, acme) = (app.clone(), acme.clone());
        tasks.spawn(async move { app.start_otp(&acme, &phone).await.status().as_u16() });
    }
    let answers = tasks.join_all().await;

    assert!(
        answers.iter().all(|s| *s == 200 || *s == 429),
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|s| **s == 200).count(), 5);
    assert_eq!(app.sms.sent().len(), 5);
    assert_eq!(app.count("otp_challenges").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_for_one_phone_send_one_code() {
    let app = Arc::new(spawn_app_with(|_| {}).await);
    let acme = app.acme().await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, acme) = (app.clone(), acme.clone());
        tasks.spawn(async move { app.start_otp(&acme, "+12025550102").await.status().as_u16() });
    }
    let answers = tasks.join_all().await;

    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 429).count(),
        9,
        "{answers:?}"
    );
    assert_eq!(app.sms.count_to("+12025550102"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_hold_across_two_instances_on_one_database() {
    let first = Arc::new(
        spawn_app_with(|c| {
            no_caps(c);
            c.limits.per_address = cap(6);
        })
        .await,
    );
    let second = Arc::new(first.second_instance().await);
    let acme = first.acme().await;

    let mut tasks = tokio::task::JoinSet::new();
    for (n, phone) in numbers(20..40).into_iter().enumerate() {
        let app = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let acme = acme.clone();
        tasks.spawn(async move { app.start_otp(&acme, &phone).await.status().as_u16() });
    }
    let answers = tasks.join_all().await;

    assert!(
        answers.iter().all(|s| *s == 200 || *s == 429),
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|s| **s == 200).count(), 6);
    assert_eq!(first.sms.sent().len() + second.sms.sent().len(), 6);
}

#[tokio::test]
async fn expired_counter_windows_are_pruned() {
    let app = spawn_app_with(|c| {
        no_caps(c);
        c.limits.per_address = cap(50);
        c.limits.per_phone = cap(50);
    })
    .await;
    let acme = app.acme().await;
    statuses(&app, &acme, &numbers(20..30)).await;
    let before = app.count("limit_counters").await;
    assert!(before >= 11, "{before}");

    app.clock.advance(3 * 86_400);
    assert_eq!(app.start_otp(&acme, "+12025550131").await.status(), 200);

    assert_eq!(app.count("limit_counters").await, 2);
}
