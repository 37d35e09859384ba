//! The admin console at `/admin`, driven over HTTP as a browser without JavaScript would:
//! signing in with a phone and the role, cookies, CSRF, cross-site posts, timeouts.

use callsign::admin::roles::{grant_admin, revoke_admin};
use callsign::phone::Phone;

use crate::helpers::{TestApp, csrf_of, location, spawn_app, spawn_app_with};

const ADMIN_PHONE: &str = "+12025550140";
const OTHER_PHONE: &str = "+12025550141";

/// A browser on the console: keeps its one cookie, follows nothing by itself.
struct ConsoleBrowser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
    /// Every Set-Cookie header received, newest last.
    set_cookies: Vec<String>,
}

impl<'a> ConsoleBrowser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookie: None,
            set_cookies: Vec::new(),
        }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap().to_owned();
            let pair = value.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
            self.set_cookies.push(value);
        }
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        let mut request = self.app.http.get(self.app.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("the page answers");
        self.remember(&response);
        response
    }

    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.app.http.post(self.app.url(path)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the page answers");
        self.remember(&response);
        response
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_with(path, form, &[]).await
    }

    /// Goes through the phone and code pages; returns the answer to the code.
    async fn sign_in(&mut self, phone: &str) -> reqwest::Response {
        let page = self.get("/admin/login").await;
        assert_eq!(page.status(), 200);
        let csrf = csrf_of(&page.text().await.unwrap());
        let sent = self
            .post("/admin/login", &[("csrf", &csrf), ("phone_number", phone)])
            .await;
        assert_eq!(sent.status(), 303);
        assert!(location(&sent).ends_with("/admin/login/code"));
        let code_page = self.get("/admin/login/code").await;
        assert_eq!(code_page.status(), 200);
        let code = self.app.sms.latest_code(phone);
        self.post("/admin/login/code", &[("csrf", &csrf), ("otp", &code)])
            .await
    }

    /// The CSRF token of the page at `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        csrf_of(&page.text().await.unwrap())
    }
}

async fn make_admin(app: &TestApp, phone: &str) -> String {
    let phone = Phone::parse(phone, None).unwrap();
    let change = grant_admin(&app.services.store, app.clock.as_ref(), &phone, "test")
        .await
        .unwrap();
    change.user_id.unwrap()
}

#[tokio::test]
async fn an_admin_signs_in_with_a_phone_and_a_code() {
    let app = spawn_app().await;
    let user_id = make_admin(&app, ADMIN_PHONE).await;
    let mut browser = ConsoleBrowser::new(&app);

    let before = browser.get("/admin").await;
    assert_eq!(before.status(), 303);
    assert!(location(&before).ends_with("/admin/login"));

    let signed_in = browser.sign_in(ADMIN_PHONE).await;
    assert_eq!(signed_in.status(), 303);
    assert!(location(&signed_in).ends_with("/admin"));
    // A new cookie value once signed in: the one from the login page no longer opens anything.
    assert_eq!(browser.set_cookies.len(), 2);
    let first = browser.set_cookies[0].split(';').next().unwrap().to_owned();
    assert_ne!(Some(first.clone()), browser.cookie);

    let overview = browser.get("/admin").await;
    assert_eq!(overview.status(), 200);
    assert_eq!(overview.headers()["cache-control"], "no-store");
    let csp = overview.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    let html = overview.text().await.unwrap();
    assert!(html.contains("Overview"));
    assert!(html.contains("console.signed_in"));

    let stale = app
        .http
        .get(app.url("/admin"))
        .header("cookie", first)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 303);

    // Only the hash of the cookie value is stored.
    let value = browser.cookie.clone().unwrap();
    let value = value.split_once('=').unwrap().1;
    let stored = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM console_sessions WHERE user_id = '{user_id}'"
        ))
        .await;
    assert_eq!(stored, 1);
    let raw = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM console_sessions WHERE csrf = '{value}' OR phone = '{value}'"
        ))
        .await;
    assert_eq!(raw, 0);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_scoped_to_the_console() {
    let app = spawn_app().await;
    let mut browser = ConsoleBrowser::new(&app);
    browser.get("/admin/login").await;
    let cookie = &browser.set_cookies[0];
    assert!(cookie.starts_with("callsign_console="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // Plain http is allowed for a loopback issuer only.
    assert!(!cookie.contains("Secure"), "{cookie}");

    let https = spawn_app_with(|c| c.issuer = Some("https://id.example.test".into())).await;
    let mut browser = ConsoleBrowser::new(&https);
    browser.get("/admin/login").await;
    let cookie = &browser.set_cookies[0];
    assert!(cookie.starts_with("__Secure-callsign_console="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn a_phone_without_the_admin_role_is_refused_like_an_unknown_one() {
    let app = spawn_app().await;
    // OTHER_PHONE has a user (it signed in through some app) but no role.
    let phone = Phone::parse(OTHER_PHONE, None).unwrap();
    let record = app
        .services
        .store
        .verify_phone("ph_other", phone.e164(), app.now())
        .await
        .unwrap();
    app.services
        .store
        .link_new_user(&record.id, "usr_other", app.now())
        .await
        .unwrap();

    let mut answers = Vec::new();
    for phone in [OTHER_PHONE, "+12025550142"] {
        let mut browser = ConsoleBrowser::new(&app);
        let refused = browser.sign_in(phone).await;
        assert_eq!(refused.status(), 403);
        let html = refused.text().await.unwrap();
        assert!(html.contains("does not give access to the admin console"));
        assert!(browser.cookie.is_none(), "the cookie is cleared");
        assert_eq!(browser.get("/admin").await.status(), 303);
        answers.push(html);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(app.count("console_sessions").await, 0);
    assert_eq!(app.count("user_roles").await, 0);
}

#[tokio::test]
async fn a_wrong_code_keeps_the_console_closed() {
    let app = spawn_app().await;
    make_admin(&app, ADMIN_PHONE).await;
    let mut browser = ConsoleBrowser::new(&app);
    let csrf = browser.csrf("/admin/login").await;
    browser
        .post(
            "/admin/login",
            &[("csrf", &csrf), ("phone_number", ADMIN_PHONE)],
        )
        .await;
    let code = app.sms.latest_code(ADMIN_PHONE);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let answer = browser
        .post("/admin/login/code", &[("csrf", &csrf), ("otp", wrong)])
        .await;
    assert_eq!(answer.status(), 303);
    assert!(location(&answer).ends_with("/admin/login/code?error=code"));
    assert_eq!(browser.get("/admin").await.status(), 303);
}

#[tokio::test]
async fn forms_without_the_session_token_or_from_another_site_change_nothing() {
    let app = spawn_app().await;
    make_admin(&app, ADMIN_PHONE).await;
    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;
    let csrf = browser.csrf("/admin/audiences").await;
    let audiences = app.count("audiences").await;

    let form = |token: &'static str| [("csrf", token), ("identifier", "orders-api")];
    let missing = browser.post("/admin/audiences", &form("")).await;
    assert_eq!(missing.status(), 403);
    let wrong = browser
        .post("/admin/audiences", &form("not-the-token"))
        .await;
    assert_eq!(wrong.status(), 403);

    let good = [("csrf", csrf.as_str()), ("identifier", "orders-api")];
    let other_origin = browser
        .post_with(
            "/admin/audiences",
            &good,
            &[("origin", "https://evil.example.test")],
        )
        .await;
    assert_eq!(other_origin.status(), 403);
    let cross_site = browser
        .post_with(
            "/admin/audiences",
            &good,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status(), 403);
    let login_cross_site = browser
        .post_with(
            "/admin/login",
            &[("csrf", &csrf), ("phone_number", ADMIN_PHONE)],
            &[("sec-fetch-site", "same-site")],
        )
        .await;
    assert_eq!(login_cross_site.status(), 403);
    assert_eq!(app.count("audiences").await, audiences);

    // The same form from the console itself goes through.
    let origin = app.address.clone();
    let same_origin = browser
        .post_with(
            "/admin/audiences",
            &good,
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(same_origin.status(), 303);
    assert_eq!(app.count("audiences").await, audiences + 1);
}

#[tokio::test]
async fn an_idle_session_ends_and_no_session_outlives_its_lifetime() {
    let app = spawn_app_with(|c| {
        c.console.idle_timeout_seconds = 600;
        c.console.max_lifetime_seconds = 1500;
    })
    .await;
    make_admin(&app, ADMIN_PHONE).await;

    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;
    // Used every 590 seconds, the session lives on...
    for _ in 0..2 {
        app.clock.advance(590);
        assert_eq!(browser.get("/admin").await.status(), 200);
    }
    // ...until its absolute lifetime is over.
    app.clock.advance(590);
    let ended = browser.get("/admin").await;
    assert_eq!(ended.status(), 303);
    assert!(location(&ended).ends_with("/admin/login"));

    let mut idle = ConsoleBrowser::new(&app);
    idle.sign_in(ADMIN_PHONE).await;
    assert_eq!(idle.get("/admin/keys").await.status(), 200);
    app.clock.advance(600);
    assert_eq!(idle.get("/admin/keys").await.status(), 303);
}

#[tokio::test]
async fn signing_out_or_losing_the_role_ends_the_session() {
    let app = spawn_app().await;
    make_admin(&app, ADMIN_PHONE).await;
    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;
    let cookie = browser.cookie.clone().unwrap();
    let csrf = browser.csrf("/admin").await;
    let out = browser.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), 303);
    assert!(location(&out).ends_with("/admin/login?signed_out"));
    assert!(browser.cookie.is_none());
    let replayed = app
        .http
        .get(app.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 303);

    // Past the resend cooldown, so that a new code is sent.
    app.clock.advance(120);
    let mut again = ConsoleBrowser::new(&app);
    again.sign_in(ADMIN_PHONE).await;
    assert_eq!(again.get("/admin").await.status(), 200);
    let phone = Phone::parse(ADMIN_PHONE, None).unwrap();
    let change = revoke_admin(&app.services.store, app.clock.as_ref(), &phone, "test")
        .await
        .unwrap();
    assert!(change.changed);
    assert_eq!(again.get("/admin").await.status(), 303);
}

#[tokio::test]
async fn console_changes_are_audited_with_the_admin_as_actor() {
    let app = spawn_app().await;
    let user_id = make_admin(&app, ADMIN_PHONE).await;
    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;

    let csrf = browser.csrf("/admin/audiences").await;
    let created = browser
        .post(
            "/admin/audiences",
            &[
                ("csrf", &csrf),
                ("identifier", "https://orders.api.example.test"),
                ("scopes", "orders:read orders:write"),
                ("ttl", "600"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let bad = browser
        .post(
            "/admin/audiences",
            &[("csrf", &csrf), ("identifier", "not a name"), ("ttl", "x")],
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("class=\"error\""));

    let client = browser
        .post(
            "/admin/clients/new",
            &[
                ("csrf", &csrf),
                ("name", "Orders backend"),
                ("type", "confidential"),
                ("grant", "client_credentials"),
                ("audience", "https://orders.api.example.test"),
                ("scopes", "orders:read"),
            ],
        )
        .await;
    assert_eq!(client.status(), 200);
    assert_eq!(client.headers()["cache-control"], "no-store");
    let html = client.text().await.unwrap();
    let secret = html
        .split(r#"<code id="client_secret">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret on the page")
        .to_owned();
    let client_id = html
        .split("Client id: <code>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    // The secret works, and the client's page never shows it again.
    let token = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.clone()),
            ],
        )
        .await;
    assert_eq!(token.status(), 200);
    let page = browser.get(&format!("/admin/clients/{client_id}")).await;
    assert!(!page.text().await.unwrap().contains(&secret));

    let rotated = browser
        .post(
            &format!("/admin/clients/{client_id}/secret"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rotated.status(), 200);
    assert!(!rotated.text().await.unwrap().contains(&secret));

    let keys = browser
        .post(
            "/admin/keys/rotate",
            &[("csrf", &csrf), ("purpose", "id_token")],
        )
        .await;
    assert_eq!(keys.status(), 303);

    let events = app.services.store.audit_events().await.unwrap();
    let actor = format!("user:{user_id}");
    for action in [
        "console.signed_in",
        "audience.created",
        "client.created",
        "client.secret_rotated",
        "key.created",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.actor == actor),
            "{action} by {actor} in {events:?}"
        );
    }
    let audit = browser.get("/admin/audit").await.text().await.unwrap();
    assert!(audit.contains("client.secret_rotated"));
    assert!(audit.contains(&client_id));
}

#[tokio::test]
async fn every_console_page_is_never_cached_or_framed() {
    let app = spawn_app().await;
    make_admin(&app, ADMIN_PHONE).await;
    let mut browser = ConsoleBrowser::new(&app);
    let login = browser.get("/admin/login").await;
    let mut pages = vec![login];
    browser.sign_in(ADMIN_PHONE).await;
    for path in [
        "/admin",
        "/admin/clients",
        "/admin/clients/new",
        "/admin/audiences",
        "/admin/users",
        "/admin/keys",
        "/admin/audit",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        pages.push(page);
    }
    pages.push(browser.get("/admin/clients/cl_nothing").await);
    for page in pages {
        let headers = page.headers();
        let path = page.url().path().to_owned();
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(csp.contains("default-src 'none'"), "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
}

fn borrowed<'a>(pairs: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The value of the hidden field `name` in a page's first form that has one.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).expect("the field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn new_user(app: &TestApp, phone: &str) -> String {
    let actor = callsign::admin::Actor {
        name: "test".into(),
        address: String::new(),
    };
    callsign::admin::users::create(&app.services, &actor, Some(phone))
        .await
        .unwrap()
        .user
        .id
}

async fn holder(app: &TestApp, phone: &str) -> Option<String> {
    app.services
        .store
        .phone_by_number(phone)
        .await
        .unwrap()
        .and_then(|p| p.user_id)
}

#[tokio::test]
async fn an_admin_moves_unlinks_and_links_numbers_through_the_console() {
    let app = spawn_app().await;
    let admin = make_admin(&app, ADMIN_PHONE).await;
    let first = new_user(&app, "+12025550171").await;
    let second = new_user(&app, "+12025550172").await;
    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;

    let found = browser.get("/admin/users?phone=0171").await;
    assert_eq!(found.status(), 200);
    let html = found.text().await.unwrap();
    assert!(html.contains(&first) && !html.contains(&second));
    let bad = browser.get("/admin/users?phone=abc").await;
    assert_eq!(bad.status(), 400);

    let page = browser.get(&format!("/admin/users/{first}")).await;
    let csrf = csrf_of(&page.text().await.unwrap());
    let moved = browser
        .post(
            &format!("/admin/users/{first}/move"),
            &[
                ("csrf", &csrf),
                ("phone_number", "+12025550171"),
                ("to", &second),
            ],
        )
        .await;
    assert_eq!(moved.status(), 303);
    assert!(location(&moved).ends_with(&format!("/admin/users/{second}?done=moved")));
    assert_eq!(holder(&app, "+12025550171").await, Some(second.clone()));

    // A move based on an outdated page changes nothing and says why.
    let stale = browser
        .post(
            &format!("/admin/users/{first}/move"),
            &[
                ("csrf", &csrf),
                ("phone_number", "+12025550171"),
                ("to", &second),
            ],
        )
        .await;
    assert_eq!(stale.status(), 409);
    assert!(stale.text().await.unwrap().contains("class=\"error\""));
    let forged = browser
        .post(
            &format!("/admin/users/{second}/unlink"),
            &[("csrf", "forged"), ("phone_number", "+12025550171")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(holder(&app, "+12025550171").await, Some(second.clone()));

    let unlinked = browser
        .post(
            &format!("/admin/users/{second}/unlink"),
            &[("csrf", &csrf), ("phone_number", "+12025550171")],
        )
        .await;
    assert_eq!(unlinked.status(), 303);
    assert_eq!(holder(&app, "+12025550171").await, None);
    let linked = browser
        .post(
            &format!("/admin/users/{first}/link"),
            &[("csrf", &csrf), ("phone_number", "+1 202 555 0171")],
        )
        .await;
    assert_eq!(linked.status(), 303);
    assert_eq!(holder(&app, "+12025550171").await, Some(first.clone()));

    let refused = browser
        .post(
            &format!("/admin/users/{admin}/status"),
            &[("csrf", &csrf), ("status", "disabled")],
        )
        .await;
    assert_eq!(refused.status(), 409, "an admin cannot lock themselves out");

    let events = app.services.store.audit_events().await.unwrap();
    let actor = format!("user:{admin}");
    let by_admin = |action: &str| {
        events
            .iter()
            .filter(|e| e.action == action && e.actor == actor)
            .count()
    };
    assert_eq!(by_admin("user.phone_moved"), 2);
    assert_eq!(by_admin("user.phone_unlinked"), 1);
    assert_eq!(by_admin("user.phone_linked"), 1);
    assert!(
        events
            .iter()
            .filter(|e| e.actor == actor)
            .all(|e| e.address == "127.0.0.1")
    );
}

#[tokio::test]
async fn clients_and_audiences_change_only_from_the_version_the_form_was_read_at() {
    let app = spawn_app().await;
    let admin = make_admin(&app, ADMIN_PHONE).await;
    app.audience(
        "https://orders.api.example.test",
        &["orders:read", "orders:write"],
    )
    .await;
    let client = app
        .confidential_client(&["https://orders.api.example.test"], &["orders:read"])
        .await;
    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;

    let path = format!("/admin/clients/{}", client.id);
    let page = browser.get(&path).await.text().await.unwrap();
    let csrf = csrf_of(&page);
    let version = hidden(&page, "version");
    let form = |version: &str, name: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("version", version.to_owned()),
            ("name", name.to_owned()),
            ("audience", "https://orders.api.example.test".to_owned()),
            ("scopes", "orders:read orders:write".to_owned()),
        ]
    };
    let changed = browser
        .post(&path, &borrowed(&form(&version, "Orders app")))
        .await;
    assert_eq!(changed.status(), 303);
    let record = app
        .services
        .store
        .client(&client.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.name, "Orders app");
    assert_eq!(record.scopes, ["orders:read", "orders:write"]);
    assert!(!record.active, "the form left `enabled` unticked");

    let stale = browser
        .post(&path, &borrowed(&form(&version, "Someone else's name")))
        .await;
    assert_eq!(stale.status(), 409);
    assert!(stale.text().await.unwrap().contains("Someone changed this"));
    let record = app
        .services
        .store
        .client(&client.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.name, "Orders app");

    let edit = "/admin/audiences/edit?identifier=https%3A%2F%2Forders.api.example.test";
    let page = browser.get(edit).await.text().await.unwrap();
    let version = hidden(&page, "version");
    let fields = |version: &str, ttl: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("identifier", "https://orders.api.example.test".to_owned()),
            ("version", version.to_owned()),
            (
                "scopes",
                "orders:read orders:write orders:refund".to_owned(),
            ),
            ("ttl", ttl.to_owned()),
        ]
    };
    for (ttl, status) in [("ten", 400), ("1200", 303), ("600", 409)] {
        let answer = browser
            .post("/admin/audiences/edit", &borrowed(&fields(&version, ttl)))
            .await;
        assert_eq!(answer.status(), status, "ttl {ttl}");
    }
    let audience = app
        .services
        .store
        .audience("https://orders.api.example.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audience.access_token_ttl, 1200);
    assert!(audience.scopes.contains(&"orders:refund".to_owned()));

    let events = app.services.store.audit_events().await.unwrap();
    let actor = format!("user:{admin}");
    for action in ["client.updated", "client.disabled", "audience.updated"] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.actor == actor),
            "{action} in {events:?}"
        );
    }
}

#[tokio::test]
async fn an_admin_unlocks_a_number_that_wrong_codes_locked() {
    let app = spawn_app_with(|c| {
        c.limits.max_consecutive_failures = 2;
        c.otp.resend_after_seconds = 0;
    })
    .await;
    let admin = make_admin(&app, ADMIN_PHONE).await;
    let acme = app.acme().await;
    let phone = "+12025550177";
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    for wrong in ["000000", "000001"] {
        assert_eq!(app.otp_grant(&acme, phone, wrong).await.status(), 400);
    }
    assert_eq!(app.start_otp(&acme, phone).await.status(), 403);

    let mut browser = ConsoleBrowser::new(&app);
    browser.sign_in(ADMIN_PHONE).await;
    let csrf = browser.csrf("/admin/users").await;
    let unlocked = browser
        .post(
            "/admin/users/unlock",
            &[("csrf", &csrf), ("phone_number", "+1 202 555 0177")],
        )
        .await;
    assert_eq!(unlocked.status(), 303);
    assert!(location(&unlocked).ends_with("/admin/users?unlocked=yes"));
    assert_eq!(app.start_otp(&acme, phone).await.status(), 200);
    let again = browser
        .post(
            "/admin/users/unlock",
            &[("csrf", &csrf), ("phone_number", phone)],
        )
        .await;
    assert!(location(&again).ends_with("/admin/users?unlocked=no"));
    let page = browser.get("/admin/users?unlocked=no").await;
    assert!(page.text().await.unwrap().contains("was not locked"));

    let events = app.services.store.audit_events().await.unwrap();
    let actor = format!("user:{admin}");
    let unlocks: Vec<_> = events
        .iter()
        .filter(|e| e.action == "phone.unlocked")
        .collect();
    assert_eq!(unlocks.len(), 1);
    assert_eq!(unlocks[0].actor, actor);
}
