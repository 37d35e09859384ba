//! Rules of the OAuth, OpenID Connect and JOSE specifications that no other module shows on
//! its own. docs/conformance.md maps every rule callsign follows to the test that shows it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use callsign::registry::NewClient;
use serde_json::{Value, json};

use crate::authorize::{authorize_url, code_for, redeem, web_client};
use crate::helpers::{
    LEDGER, ORDERS, PHONE_TOKEN_TYPE, TOKEN_EXCHANGE, TestApp, TestClient, assert_error, location,
    peek, query_param, refresh, spawn_app, spawn_app_with,
};

/// Asserts the two caching headers of RFC 6749 §5.1 and returns the JSON body.
async fn assert_uncached(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    response.json().await.unwrap()
}

/// The tokens of a browser sign-in asking for `scope`.
async fn signed_in(app: &TestApp, client: &TestClient, phone: &str, scope: &str) -> Value {
    let code = code_for(app, client, phone, &[("scope", scope)]).await;
    let response = redeem(app, client, &code, &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn decoded_len(value: &str) -> usize {
    URL_SAFE_NO_PAD.decode(value).expect("base64url").len()
}

#[tokio::test]
async fn every_grant_answers_with_no_store_and_no_cache() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;
    app.audience(LEDGER, &["ledger:read"]).await;
    let machine = app
        .client(NewClient {
            name: "ledger-svc".into(),
            grants: vec!["client_credentials".into()],
            audiences: vec![LEDGER.into()],
            ..NewClient::default()
        })
        .await;

    let code = code_for(&app, &web, "+12025550180", &[("scope", "offline_access")]).await;
    let tokens = assert_uncached(redeem(&app, &web, &code, &[]).await).await;
    let rotated = refresh(&app, &web, tokens["refresh_token"].as_str().unwrap(), &[]).await;
    assert_uncached(rotated).await;
    let phone_token = app.phone_token(&web, "+12025550181").await;
    assert_uncached(app.exchange(&web, &phone_token, &[]).await).await;
    let mut form = machine.auth();
    form.push(("grant_type", "client_credentials".into()));
    assert_uncached(app.post_form("/token", &form).await).await;
}

#[tokio::test]
async fn client_secrets_in_the_query_are_refused_at_every_endpoint_that_authenticates() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let secret = acme.secret.clone().unwrap();
    let phone_token = app.phone_token(&acme, "+12025550182").await;
    let query = format!("?client_id={}&client_secret={secret}", acme.id);

    let token = app
        .http
        .post(format!("{}{query}", app.url("/token")))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &phone_token),
            ("subject_token_type", PHONE_TOKEN_TYPE),
        ])
        .send()
        .await
        .unwrap();
    assert_error(token, 400, "invalid_request").await;
    for path in ["/introspect", "/revoke"] {
        let response = app
            .http
            .post(format!("{}{query}", app.url(path)))
            .form(&[("token", &phone_token)])
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "invalid_request").await;
    }

    assert_eq!(app.count("users").await, 0);
    let still_usable = app.exchange(&acme, &phone_token, &[]).await;
    assert_eq!(still_usable.status(), 200, "the revocation was refused");
}

#[tokio::test]
async fn codes_refresh_tokens_and_client_secrets_carry_256_random_bits() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;

    let first = code_for(&app, &web, "+12025550183", &[("scope", "offline_access")]).await;
    let tokens: Value = redeem(&app, &web, &first, &[]).await.json().await.unwrap();
    app.clock.advance(60);
    let second = code_for(&app, &web, "+12025550183", &[]).await;
    let other = app.confidential_client(&[ORDERS], &[]).await;

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    // RFC 6749 §10.10 asks for at most 2^-160 odds of guessing; these give 2^-256.
    assert_eq!(decoded_len(&first), 32);
    assert_eq!(decoded_len(&second), 32);
    assert_ne!(first, second);
    assert_eq!(decoded_len(refresh_token), 32);
    let secrets = [web.secret.unwrap(), other.secret.unwrap()];
    assert!(secrets.iter().all(|secret| decoded_len(secret) == 32));
    assert_ne!(secrets[0], secrets[1]);
}

#[tokio::test]
async fn userinfo_answers_each_bearer_failure_with_its_own_code() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;
    let tokens = signed_in(
        &app,
        &web,
        "+12025550184",
        "openid offline_access orders:read",
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = |token: &str| app.http.get(app.url("/userinfo")).bearer_auth(token).send();
    let challenge = |response: &reqwest::Response| {
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned()
    };

    let in_query = app
        .http
        .get(format!("{}?access_token={access}", app.url("/userinfo")))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 400);
    assert!(challenge(&in_query).contains(r#"error="invalid_request""#));

    // A narrower refresh keeps the userinfo audience but drops openid: too little scope.
    let rt = tokens["refresh_token"].as_str().unwrap();
    let narrowed: Value = refresh(&app, &web, rt, &[("scope", "orders:read offline_access")])
        .await
        .json()
        .await
        .unwrap();
    let without_openid = narrowed["access_token"].as_str().unwrap();
    let too_little = userinfo(without_openid).await.unwrap();
    assert_eq!(too_little.status(), 403);
    assert!(challenge(&too_little).contains(r#"error="insufficient_scope""#));

    assert_eq!(userinfo(access).await.unwrap().status(), 200);
    let mut form = web.auth();
    form.push(("token", access.to_owned()));
    assert_eq!(app.post_form("/revoke", &form).await.status(), 200);
    let revoked = userinfo(access).await.unwrap();
    assert_eq!(revoked.status(), 401);
    assert!(challenge(&revoked).contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn unknown_token_types_and_an_actor_token_without_its_type_are_invalid_requests() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550185").await;
    let before = app.snapshot().await;
    let form = |pairs: &[(&'static str, &str)]| {
        let mut form = acme.auth();
        form.push(("grant_type", TOKEN_EXCHANGE.to_owned()));
        form.push(("subject_token", phone_token.clone()));
        form.extend(pairs.iter().map(|(k, v)| (*k, v.to_string())));
        form
    };

    let cases = [
        form(&[("subject_token_type", "urn:example:token-type:unknown")]),
        form(&[("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")]),
        form(&[
            ("subject_token_type", PHONE_TOKEN_TYPE),
            ("actor_token", &phone_token),
        ]),
        form(&[
            ("subject_token_type", PHONE_TOKEN_TYPE),
            ("requested_token_type", "urn:example:token-type:unknown"),
        ]),
    ];
    for pairs in cases {
        let response = app.post_form("/token", &pairs).await;
        assert_error(response, 400, "invalid_request").await;
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_requested_resource_becomes_the_audience_of_the_token() {
    let app = spawn_app().await;
    app.audience(ORDERS, &["orders:read"]).await;
    app.audience(LEDGER, &["ledger:read"]).await;
    let client = app
        .confidential_client(&[ORDERS, LEDGER], &["orders:read", "ledger:read"])
        .await;
    let phone_token = app.phone_token(&client, "+12025550186").await;

    let orders: Value = app
        .exchange(&client, &phone_token, &[("resource", ORDERS)])
        .await
        .json()
        .await
        .unwrap();
    let ledger: Value = app
        .exchange(
            &client,
            &phone_token,
            &[("resource", LEDGER), ("scope", "ledger:read")],
        )
        .await
        .json()
        .await
        .unwrap();

    let (_, orders) = peek(orders["access_token"].as_str().unwrap());
    let (_, ledger) = peek(ledger["access_token"].as_str().unwrap());
    assert_eq!(orders["aud"], ORDERS);
    assert_eq!(ledger["aud"], LEDGER);
    assert_eq!(ledger["scope"], "ledger:read");
}

#[tokio::test]
async fn a_resource_named_at_the_authorization_endpoint_is_checked_and_becomes_the_audience() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;

    let code = code_for(&app, &web, "+12025550187", &[("resource", ORDERS)]).await;
    let body: Value = redeem(&app, &web, &code, &[]).await.json().await.unwrap();
    let (_, claims) = peek(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS);

    for resource in [LEDGER, "orders", "https://orders.api.example.test#f"] {
        let url = authorize_url(&app, &web, &[("resource", resource)]);
        let response = app.http.get(url).send().await.unwrap();
        let back = location(&response);
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_target"),
            "{resource}"
        );
    }
}

#[tokio::test]
async fn a_code_may_be_redeemed_for_a_resource_of_its_grant_but_no_other() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;
    app.audience(LEDGER, &["ledger:read"]).await;
    let code = code_for(
        &app,
        &web,
        "+12025550195",
        &[("scope", "openid orders:read")],
    )
    .await;

    let wider = redeem(&app, &web, &code, &[("resource", LEDGER)]).await;
    assert_error(wider, 400, "invalid_target").await;

    let narrowed = redeem(&app, &web, &code, &[("resource", ORDERS)]).await;
    assert_eq!(
        narrowed.status(),
        200,
        "the refusal did not use the code up"
    );
    let body: Value = narrowed.json().await.unwrap();
    let (_, claims) = peek(body["access_token"].as_str().unwrap());
    let userinfo = format!("{}/userinfo", app.issuer);
    assert_eq!(claims["aud"], json!([ORDERS, userinfo]));
    assert_eq!(claims["scope"], "openid orders:read");
}

#[tokio::test]
async fn a_refresh_may_name_a_resource_of_its_grant_but_no_other() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;
    app.audience(LEDGER, &["ledger:read"]).await;
    let tokens = signed_in(&app, &web, "+12025550188", "offline_access orders:read").await;
    let rt = tokens["refresh_token"].as_str().unwrap();

    let wider = refresh(&app, &web, rt, &[("resource", LEDGER)]).await;
    assert_error(wider, 400, "invalid_target").await;

    let same: Value = refresh(&app, &web, rt, &[("resource", ORDERS)])
        .await
        .json()
        .await
        .unwrap();
    let (_, claims) = peek(same["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS);
}

#[tokio::test]
async fn users_and_machine_clients_never_share_a_subject() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let machine = app
        .client(NewClient {
            name: "orders-svc".into(),
            grants: vec!["client_credentials".into()],
            audiences: vec![ORDERS.into()],
            ..NewClient::default()
        })
        .await;
    let phone_token = app.phone_token(&acme, "+12025550189").await;

    let person: Value = app
        .exchange(&acme, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    let mut form = machine.auth();
    form.push(("grant_type", "client_credentials".into()));
    let service: Value = app.post_form("/token", &form).await.json().await.unwrap();

    // Client ids are chosen by the server, in a namespace of their own.
    let (_, person) = peek(person["access_token"].as_str().unwrap());
    let (_, service) = peek(service["access_token"].as_str().unwrap());
    assert!(person["sub"].as_str().unwrap().starts_with("usr_"));
    assert!(service["sub"].as_str().unwrap().starts_with("cl_"));
    assert!(acme.id.starts_with("cl_") && machine.id.starts_with("cl_"));
}

#[tokio::test]
async fn discovery_names_every_required_member_and_nothing_unsafe() {
    let app = spawn_app_with(|c| c.issuer = Some("https://auth.example.test".into())).await;

    let document: Value = app.get_json("/.well-known/openid-configuration").await;

    let issuer = "https://auth.example.test";
    assert_eq!(document["issuer"], issuer);
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let url = document[endpoint].as_str().unwrap_or_default();
        assert!(url.starts_with(&format!("{issuer}/")), "{endpoint}: {url}");
    }
    assert_eq!(document["response_types_supported"], json!(["code"]));
    assert_eq!(document["subject_types_supported"], json!(["public"]));
    let id_token_algs = document["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(id_token_algs.contains(&json!("RS256")));
    assert!(document["scopes_supported"].is_array());
    assert!(document["claims_supported"].is_array());
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );
    let grants = document["grant_types_supported"].as_array().unwrap();
    assert!(!grants.contains(&json!("password")) && !grants.contains(&json!("implicit")));
    // No JWT client authentication is offered, so no list of its algorithms is owed.
    let methods = document["token_endpoint_auth_methods_supported"].to_string();
    assert!(!methods.contains("_jwt"), "{methods}");
    for (name, value) in document.as_object().unwrap() {
        if name.ends_with("_alg_values_supported") {
            assert!(!value.to_string().contains("none"), "{name}: {value}");
        }
    }
}

#[tokio::test]
async fn every_token_uses_the_algorithm_its_published_key_names() {
    let app = spawn_app_with(|c| c.keys.phone_token_algorithm = "EdDSA".into()).await;
    let web = web_client(&app, true).await;
    let tokens = signed_in(&app, &web, "+12025550190", "openid orders:read").await;
    let phone_token = app.phone_token(&web, "+12025550191").await;
    let jwks = app.jwks().await;
    let published = |kid: &Value| {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == *kid)
            .cloned()
            .expect("the kid is published")
    };

    for token in [
        phone_token.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
    ] {
        let (header, _) = peek(token);
        assert_eq!(published(&header["kid"])["alg"], header["alg"], "{header}");
    }
    let (header, _) = peek(&phone_token);
    let okp = published(&header["kid"]);
    let mut members: Vec<&str> = okp
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort();
    assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
    assert_eq!(
        (okp["kty"].as_str(), okp["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
}

#[tokio::test]
async fn an_id_token_is_neither_a_phone_token_nor_an_access_token() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;
    let tokens = signed_in(&app, &web, "+12025550192", "openid phone").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(peek(id_token).0["typ"], "JWT");

    let as_subject = app.exchange(&web, id_token, &[]).await;
    assert_error(as_subject, 400, "invalid_request").await;
    let as_bearer = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), 401);
    let mut form = web.auth();
    form.push(("token", id_token.to_owned()));
    let status: Value = app
        .post_form("/introspect", &form)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({"active": false}));
}

#[tokio::test]
async fn an_x5u_header_is_never_fetched() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let token = app.phone_token(&acme, "+12025550193").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let x5u = format!("http://{}/chain.pem", listener.local_addr().unwrap());
    let (mut header, claims) = peek(&token);
    header["x5u"] = json!(x5u);
    let signature = token.rsplit('.').next().unwrap();
    let forged = format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );

    let response = app.exchange(&acme, &forged, &[]).await;

    assert_error(response, 400, "invalid_request").await;
    let fetched =
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(fetched.is_err(), "the server fetched the x5u");
}

#[tokio::test]
async fn the_authorization_endpoint_allows_no_cross_origin_reads() {
    let app = spawn_app().await;
    let web = web_client(&app, true).await;
    let url = authorize_url(&app, &web, &[]);

    let page = app
        .http
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), 200);
    for response in [page, preflight] {
        let allowed = response.headers().get("access-control-allow-origin");
        assert!(allowed.is_none(), "{allowed:?}");
    }
}

#[tokio::test]
async fn a_browser_app_on_another_origin_may_call_the_token_and_metadata_endpoints() {
    let app = spawn_app().await;
    app.audience(ORDERS, &[]).await;
    let spa = app.public_client(&[ORDERS], &[]).await;
    let origin = "https://app.example.test";

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(headers.get("access-control-allow-credentials").is_none());

    // The answers themselves, errors included, may be read by the app.
    let refused = app
        .http
        .post(app.url("/token"))
        .header("origin", origin)
        .form(&[("grant_type", "client_credentials"), ("client_id", &spa.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    assert_error(refused, 400, "unauthorized_client").await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
    }
    // Operator surfaces stay same-origin.
    for path in ["/admin/v1/clients", "/metrics"] {
        let response = app
            .http
            .get(app.url(path))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn introspection_takes_a_type_hint_and_refuses_a_repeated_token() {
    let app = spawn_app().await;
    let acme = app.acme().await;
    let phone_token = app.phone_token(&acme, "+12025550194").await;
    let body: Value = app
        .exchange(&acme, &phone_token, &[])
        .await
        .json()
        .await
        .unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let form = |extra: &[(&'static str, &str)]| {
        let mut form = acme.auth();
        form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        form
    };

    let hinted = app
        .post_form(
            "/introspect",
            &form(&[("token", &access), ("token_type_hint", "access_token")]),
        )
        .await;
    let wrong_hint = app
        .post_form(
            "/introspect",
            &form(&[("token", &access), ("token_type_hint", "refresh_token")]),
        )
        .await;
    let twice = app
        .post_form("/introspect", &form(&[("token", &access), ("token", "x")]))
        .await;

    assert_eq!(assert_uncached(hinted).await["active"], true);
    assert_eq!(
        assert_uncached(wrong_hint).await["active"],
        true,
        "RFC 7662 §2.1: a wrong hint widens the search"
    );
    assert_error(twice, 400, "invalid_request").await;
}
