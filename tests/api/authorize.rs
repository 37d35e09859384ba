//! The browser flow: `/authorize`, the sign-in pages, and the authorization code grant.

use callsign::registry::NewClient;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenIntrospectionResponse,
};
use serde_json::Value;

use crate::helpers::{
    Browser, ORDERS, TestApp, TestClient, assert_error, location, oidc_send, peek, query_param,
    spawn_app, spawn_app_with,
};

const CALLBACK: &str = "https://acme.example.test/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A confidential web app with the browser flow and refresh tokens.
pub async fn web_client(app: &TestApp, first_party: bool) -> TestClient {
    app.audience(ORDERS, &["orders:read", "orders:write"]).await;
    app.client(NewClient {
        name: "Acme Web".into(),
        grants: [
            "authorization_code",
            "refresh_token",
            "sms-otp",
            "token-exchange",
        ]
        .map(String::from)
        .to_vec(),
        audiences: vec![ORDERS.into()],
        scopes: ["openid", "phone", "offline_access", "orders:read"]
            .map(String::from)
            .to_vec(),
        redirect_uris: vec![CALLBACK.into()],
        first_party,
        ..NewClient::default()
    })
    .await
}

/// An authorization URL with PKCE (the RFC 7636 sample pair).
pub fn authorize_url(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("state", "s1")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    for (key, value) in extra {
        url.query_pairs_mut().append_pair(key, value);
    }
    url.to_string()
}

/// Signs in and returns the code.
pub async fn code_for(
    app: &TestApp,
    client: &TestClient,
    phone: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut browser = Browser::new(app);
    let back = browser
        .sign_in(&authorize_url(app, client, extra), phone)
        .await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.issuer.as_str())
    );
    query_param(&back, "code").expect("a code")
}

pub async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = client.auth();
    form.extend([
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", CALLBACK.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
    ]);
    for (key, value) in extra {
        form.retain(|(k, _)| k != key);
        if !value.is_empty() {
            form.push((key, value.to_string()));
        }
    }
    app.post_form("/token", &form).await
}

#[tokio::test]
async fn an_openid_client_signs_in_refreshes_reads_userinfo_and_revokes() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;
    let http = app.http.clone();
    let send = move |request| oidc_send(http.clone(), request);
    let issuer = IssuerUrl::new(app.issuer.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &send)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(acme.id.clone()),
        Some(ClientSecret::new(acme.secret.clone().unwrap())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
    .set_introspection_url(IntrospectionUrl::new(app.url("/introspect")).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("phone".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("orders:read".into()))
        .set_pkce_challenge(challenge)
        .url();

    let back = Browser::new(&app)
        .sign_in(url.as_str(), "+12025550130")
        .await;
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = AuthorizationCode::new(query_param(&back, "code").unwrap());
    let tokens = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap();

    let id_token = tokens.extra_fields().id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the ID token verifies");
    assert_eq!(
        claims.phone_number().map(|p| p.as_str()),
        Some("+12025550130")
    );
    assert_eq!(claims.phone_number_verified(), Some(true));
    let user_id = claims.subject().as_str().to_owned();
    assert!(user_id.starts_with("usr_"));
    let (header, _) = peek(&id_token.to_string());
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("RS256"), Some("JWT"))
    );
    let (_, access) = peek(tokens.access_token().secret());
    assert_eq!(
        access["aud"],
        serde_json::json!([ORDERS, format!("{}/userinfo", app.issuer)])
    );

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&send)
        .await
        .expect("userinfo answers");
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(
        info.phone_number().map(|p| p.as_str()),
        Some("+12025550130")
    );

    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&send)
        .await
        .expect("the refresh succeeds");
    let rotated = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .clone();
    assert_ne!(rotated.secret(), refresh.secret());

    // The library refuses a revocation URL that is not https, so this step is sent by hand.
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&acme.id, acme.secret.as_deref())
        .form(&[
            ("token", rotated.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let status = client
        .introspect(refreshed.access_token())
        .request_async(&send)
        .await
        .unwrap();
    assert!(
        !status.active(),
        "revoking the refresh token revoked its family"
    );
    let again = client
        .exchange_refresh_token(&rotated)
        .unwrap()
        .request_async(&send)
        .await;
    assert!(again.is_err());
}

#[tokio::test]
async fn the_pages_are_accessible_forms_that_cannot_be_framed() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;
    let mut browser = Browser::new(&app);

    let page = browser.get(&authorize_url(&app, &acme, &[])).await;

    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Acme Web") && html.contains(r#"<label for="phone_number">"#));
    assert!(html.contains(r#"autocomplete="tel""#));
    let csrf = crate::helpers::csrf_of(&html);
    browser
        .post(
            &app.url("/authorize/phone"),
            &[("csrf", &csrf), ("phone_number", "+12025550131")],
        )
        .await;
    let code_page = browser
        .get(&app.url("/authorize/code"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        code_page.contains(r#"autocomplete="one-time-code""#)
            && code_page.contains(r#"inputmode="numeric""#)
    );
    assert!(
        !code_page.contains("2025550131"),
        "the page shows the number masked"
    );
    assert!(!code_page.contains(&app.sms.latest_code("+12025550131")));
}

#[tokio::test]
async fn forms_without_the_sign_in_cookie_or_csrf_token_are_refused() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;
    let mut browser = Browser::new(&app);
    let html = browser
        .get(&authorize_url(&app, &acme, &[]))
        .await
        .text()
        .await
        .unwrap();
    let csrf = crate::helpers::csrf_of(&html);

    let forged = browser
        .post(
            &app.url("/authorize/phone"),
            &[("csrf", "forged"), ("phone_number", "+12025550132")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let mut stranger = Browser::new(&app);
    let no_cookie = stranger
        .post(
            &app.url("/authorize/phone"),
            &[("csrf", &csrf), ("phone_number", "+12025550132")],
        )
        .await;
    assert_eq!(no_cookie.status(), 400);
    assert!(app.sms.sent().is_empty());
}

#[tokio::test]
async fn a_wrong_code_on_the_page_asks_again_and_counts_an_attempt() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let mut browser = Browser::new(&app);
    let csrf = browser
        .enter_phone(&authorize_url(&app, &acme, &[]), "+12025550133")
        .await;
    let code = app.sms.latest_code("+12025550133");
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let again = browser
        .post(
            &app.url("/authorize/code"),
            &[("csrf", &csrf), ("otp", wrong)],
        )
        .await;

    assert_eq!(again.status(), 303);
    assert!(location(&again).contains("/authorize/code?error"));
    assert_eq!(
        app.scalar("SELECT attempts_left FROM otp_challenges").await,
        4
    );
    let right = browser
        .post(
            &app.url("/authorize/code"),
            &[("csrf", &csrf), ("otp", &code)],
        )
        .await;
    assert!(
        location(&right).starts_with(CALLBACK),
        "first-party: no consent page"
    );
}

#[tokio::test]
async fn consent_is_asked_once_and_remembered() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;

    let first = Browser::new(&app)
        .sign_in(
            &authorize_url(&app, &acme, &[("scope", "orders:read")]),
            "+12025550134",
        )
        .await;
    assert!(first.starts_with(CALLBACK));
    app.clock.advance(60);
    let mut browser = Browser::new(&app);
    let csrf = browser
        .enter_phone(
            &authorize_url(&app, &acme, &[("scope", "orders:read")]),
            "+12025550134",
        )
        .await;
    let code = app.sms.latest_code("+12025550134");
    let answered = browser
        .post(
            &app.url("/authorize/code"),
            &[("csrf", &csrf), ("otp", &code)],
        )
        .await;

    assert!(
        location(&answered).starts_with(CALLBACK),
        "no second consent page"
    );
}

#[tokio::test]
async fn declining_consent_sends_access_denied_back() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;
    let mut browser = Browser::new(&app);
    let csrf = browser
        .enter_phone(&authorize_url(&app, &acme, &[]), "+12025550135")
        .await;
    let code = app.sms.latest_code("+12025550135");
    browser
        .post(
            &app.url("/authorize/code"),
            &[("csrf", &csrf), ("otp", &code)],
        )
        .await;

    let declined = browser
        .post(
            &app.url("/authorize/consent"),
            &[("csrf", &csrf), ("decision", "deny")],
        )
        .await;

    let back = location(&declined);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    assert!(query_param(&back, "code").is_none());
}

#[tokio::test]
async fn authorization_request_errors_go_back_to_the_client_after_its_checks() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("scope", "ledger:read")], "invalid_scope"),
        (
            &[("audience", "https://ledger.api.example.test")],
            "invalid_target",
        ),
        (&[("scope", "orders:write")], "invalid_scope"),
    ];
    for (extra, error) in cases {
        let response = app
            .http
            .get(authorize_url(&app, &acme, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let back = location(&response);
        assert!(back.starts_with(CALLBACK));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some(error),
            "{extra:?}"
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    }
    let mut url = reqwest::Url::parse(&authorize_url(&app, &acme, &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "response_type")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("response_type", "token");
    let back = location(&app.http.get(url).send().await.unwrap());
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("unsupported_response_type")
    );
}

#[tokio::test]
async fn pkce_is_required_of_every_client_and_only_s256() {
    let app = spawn_app().await;
    let acme = web_client(&app, false).await;
    let base = |challenge: Option<&str>, method: Option<&str>| {
        let mut url = reqwest::Url::parse(&app.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &acme.id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("state", "s2");
        if let Some(challenge) = challenge {
            url.query_pairs_mut()
                .append_pair("code_challenge", challenge);
        }
        if let Some(method) = method {
            url.query_pairs_mut()
                .append_pair("code_challenge_method", method);
        }
        url.to_string()
    };

    for url in [
        base(None, None),
        base(Some(CHALLENGE), Some("plain")),
        base(Some(CHALLENGE), None),
        base(Some("short"), Some("S256")),
    ] {
        let response = app.http.get(&url).send().await.unwrap();
        let back = location(&response);
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request"),
            "{url}"
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("s2"));
        assert!(query_param(&back, "code").is_none());
    }
}

#[tokio::test]
async fn a_code_needs_its_verifier_its_redirect_uri_and_its_client() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let ledger = web_client_named(&app, "Ledger").await;
    let code = code_for(&app, &acme, "+12025550120", &[]).await;

    let other_client = redeem(&app, &ledger, &code, &[]).await;
    assert_error(other_client, 400, "invalid_grant").await;
    let wrong_verifier = redeem(&app, &acme, &code, &[("code_verifier", &"x".repeat(43))]).await;
    assert_error(wrong_verifier, 400, "invalid_grant").await;
    let no_verifier = redeem(&app, &acme, &code, &[("code_verifier", "")]).await;
    assert_error(no_verifier, 400, "invalid_grant").await;
    let malformed = redeem(&app, &acme, &code, &[("code_verifier", "short")]).await;
    assert_error(malformed, 400, "invalid_request").await;
    let other_redirect = redeem(
        &app,
        &acme,
        &code,
        &[("redirect_uri", "https://acme.example.test/other")],
    )
    .await;
    assert_error(other_redirect, 400, "invalid_grant").await;
    let no_redirect = redeem(&app, &acme, &code, &[("redirect_uri", "")]).await;
    assert_error(no_redirect, 400, "invalid_grant").await;

    let redeemed = redeem(&app, &acme, &code, &[]).await;
    assert_eq!(
        redeemed.status(),
        200,
        "none of the refusals used the code up"
    );
    let body: Value = redeemed.json().await.unwrap();
    assert!(
        body["refresh_token"].is_null(),
        "offline_access was not requested"
    );
    assert!(body["id_token"].is_null(), "openid was not requested");
}

async fn web_client_named(app: &TestApp, name: &str) -> TestClient {
    app.client(NewClient {
        name: name.into(),
        grants: vec!["authorization_code".into()],
        audiences: vec![ORDERS.into()],
        redirect_uris: vec!["https://ledger.example.test/cb".into()],
        ..NewClient::default()
    })
    .await
}

#[tokio::test]
async fn a_code_expires_after_a_minute() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let code = code_for(&app, &acme, "+12025550136", &[]).await;
    app.clock.advance(60);

    assert_error(redeem(&app, &acme, &code, &[]).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_gave_the_first_time() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let code = code_for(
        &app,
        &acme,
        "+12025550137",
        &[("scope", "openid offline_access")],
    )
    .await;
    let first: Value = redeem(&app, &acme, &code, &[]).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();

    assert_error(redeem(&app, &acme, &code, &[]).await, 400, "invalid_grant").await;

    let events = app.services.store.audit_events().await.unwrap();
    let replayed = events
        .iter()
        .find(|e| e.action == "authorization_code.replayed")
        .expect("the replay is in the audit trail");
    assert_eq!(replayed.subject, peek(access).1["sub"].as_str().unwrap());
    assert!(replayed.detail.contains(&acme.id) && !replayed.detail.contains(&code));
    let mut form = acme.auth();
    form.push(("token", access.to_owned()));
    let status: Value = app
        .post_form("/introspect", &form)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!({"active": false}));
    let mut form = acme.auth();
    form.extend([
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh.to_owned()),
    ]);
    assert_error(app.post_form("/token", &form).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn with_sign_up_disabled_an_unknown_phone_is_denied() {
    let app = spawn_app_with(|c| c.signup.create_users = false).await;
    let acme = web_client(&app, true).await;

    let back = Browser::new(&app)
        .sign_in(&authorize_url(&app, &acme, &[]), "+12025550138")
        .await;

    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn redirect_uris_are_matched_exactly_for_a_public_client_and_nothing_redirects_elsewhere() {
    let app = spawn_app().await;
    app.audience(ORDERS, &[]).await;
    let spa = app
        .client(NewClient {
            name: "demo-spa".into(),
            public: true,
            grants: vec!["authorization_code".into()],
            audiences: vec![ORDERS.into()],
            redirect_uris: vec!["https://app.example.test/callback".into()],
            ..NewClient::default()
        })
        .await;
    let url = |redirects: &[&str]| {
        let mut url = reqwest::Url::parse(&app.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &spa.id)
            .append_pair("state", "s3")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        for redirect in redirects {
            url.query_pairs_mut().append_pair("redirect_uri", redirect);
        }
        url.to_string()
    };

    for evil in [
        "https://app.example.test/callback@evil.example",
        "https://app.example.test%40evil.example/callback",
        "https://app.example.test:443@evil.example/callback",
        "https://x@y@app.example.test/callback",
        "https://app.example.test.evil.example/callback",
        "https://app.example.test/callback/../../evil",
        "https://app.example.test/callback?next=https://evil.example",
        "https://app.example.test/callback#f",
        "https:app.example.test/callback",
        "//evil.example/callback",
        "http://app.example.test/callback",
        "HTTPS://APP.EXAMPLE.TEST/callback",
    ] {
        let response = app.http.get(url(&[evil])).send().await.unwrap();
        assert_eq!(response.status(), 400, "{evil}");
        assert!(response.headers().get("location").is_none(), "{evil}");
    }
    let twice = app
        .http
        .get(url(&[
            "https://app.example.test/callback",
            "https://evil.example/cb",
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert!(twice.headers().get("location").is_none());
    assert_eq!(
        app.count("login_requests").await,
        0,
        "no sign-in was started"
    );

    // The registered URI, once, starts a sign-in; a public client redeems with PKCE alone.
    let mut browser = Browser::new(&app);
    let back = browser
        .sign_in(&url(&["https://app.example.test/callback"]), "+12025550139")
        .await;
    assert!(
        back.starts_with("https://app.example.test/callback?"),
        "{back}"
    );
    let code = query_param(&back, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", spa.id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.example.test/callback"),
        ("code_verifier", VERIFIER),
    ];
    let redeemed = app
        .http
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(redeemed.status(), 200);
}

#[tokio::test]
async fn a_native_app_on_a_loopback_address_may_listen_on_any_port() {
    let app = spawn_app().await;
    app.audience(ORDERS, &[]).await;
    let native = app
        .client(NewClient {
            name: "Desktop app".into(),
            public: true,
            grants: vec!["authorization_code".into()],
            audiences: vec![ORDERS.into()],
            redirect_uris: vec!["http://127.0.0.1/oauth/done".into()],
            ..NewClient::default()
        })
        .await;
    let url = |redirect: &str| {
        let mut url = reqwest::Url::parse(&app.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &native.id)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "n1")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    };
    for wrong in [
        "http://127.0.0.1:51004/oauth/done/",
        "http://127.0.0.1:51004/oauth/other",
        "http://127.0.0.1:0/oauth/done",
        "http://127.0.0.1:51004@evil.example/oauth/done",
        "http://localhost:51004/oauth/done",
        "https://127.0.0.1:51004/oauth/done",
    ] {
        let response = app.http.get(url(wrong)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{wrong}");
        assert!(response.headers().get("location").is_none(), "{wrong}");
    }

    // The port the app was given today goes through the whole flow.
    let redirect = "http://127.0.0.1:51004/oauth/done";
    let mut browser = Browser::new(&app);
    let back = browser.sign_in(&url(redirect), "+12025550147").await;
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    let code = query_param(&back, "code").unwrap();
    let app = &app;
    let redeem_with = |redirect: &'static str| {
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", native.id.clone()),
            ("code", code.clone()),
            ("redirect_uri", redirect.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ];
        async move { app.post_form("/token", &form).await }
    };
    // The code is bound to that exact port: another one is a different redirect URI.
    let elsewhere = redeem_with("http://127.0.0.1:51005/oauth/done").await;
    assert_error(elsewhere, 400, "invalid_grant").await;
    let redeemed = redeem_with("http://127.0.0.1:51004/oauth/done").await;
    assert_eq!(redeemed.status(), 200);
}

#[tokio::test]
async fn prompt_none_request_objects_and_a_missing_response_type_are_refused_to_the_client() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("prompt", "none")], "login_required"),
        (&[("prompt", "none login")], "invalid_request"),
        (
            &[("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            &[("request_uri", "https://acme.example.test/r")],
            "request_uri_not_supported",
        ),
    ];
    for (extra, error) in cases {
        let response = app
            .http
            .get(authorize_url(&app, &acme, extra))
            .send()
            .await
            .unwrap();
        let back = location(&response);
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some(error),
            "{extra:?}"
        );
    }
    let url = authorize_url(&app, &acme, &[]).replace("response_type=code&", "");
    let back = location(&app.http.get(url).send().await.unwrap());
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn starting_the_sign_in_again_inside_the_resend_interval_asks_for_the_code_already_sent() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let mut first = Browser::new(&app);
    first
        .enter_phone(&authorize_url(&app, &acme, &[]), "+12025550159")
        .await;
    let code = app.sms.latest_code("+12025550159");

    let mut again = Browser::new(&app);
    let html = again
        .get(&authorize_url(&app, &acme, &[]))
        .await
        .text()
        .await
        .unwrap();
    let csrf = crate::helpers::csrf_of(&html);
    let sent = again
        .post(
            &app.url("/authorize/phone"),
            &[("csrf", &csrf), ("phone_number", "+12025550159")],
        )
        .await;
    assert!(location(&sent).ends_with("/authorize/code"));
    let answered = again
        .post(
            &app.url("/authorize/code"),
            &[("csrf", &csrf), ("otp", &code)],
        )
        .await;

    assert!(location(&answered).starts_with(CALLBACK));
    assert_eq!(app.sms.count_to("+12025550159"), 1, "no second SMS");
}

#[tokio::test]
async fn an_oversized_sign_in_form_gets_a_page_not_framework_text() {
    let app = spawn_app().await;
    let acme = web_client(&app, true).await;
    let mut browser = Browser::new(&app);
    browser.get(&authorize_url(&app, &acme, &[])).await;
    let huge = "9".repeat(100_000);

    let response = browser
        .post(&app.url("/authorize/phone"), &[("phone_number", &huge)])
        .await;

    assert_eq!(response.status(), 403);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(app.sms.sent().is_empty());
}
