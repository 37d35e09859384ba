//! Changing and removing clients and audiences through the admin API, the audit trail's
//! filters, and the OpenAPI document.

use serde_json::{Value, json};

use crate::admin::{admin, call, call_if, etag};
use crate::authorize::{code_for, redeem, web_client};
use crate::helpers::{LEDGER, ORDERS, TestApp, TestClient, assert_error, introspect, spawn_app};

/// `/admin/v1/audiences/{identifier}` with the identifier percent-encoded.
fn audience_path(identifier: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(identifier.as_bytes()).collect();
    format!("/admin/v1/audiences/{encoded}")
}

async fn current_etag(app: &TestApp, token: &str, path: &str) -> String {
    let (status, _, headers) = call(app, "GET", path, Some(token), None).await;
    assert_eq!(status, 200);
    etag(&headers)
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let tag = current_etag(app, token, path).await;
    let (status, answer, headers) =
        call_if(app, "PATCH", path, Some(token), Some(body), Some(&tag)).await;
    if status == 200 {
        assert_ne!(etag(&headers), tag, "a change gives a new ETag");
    }
    (status, answer)
}

async fn delete(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let (status, body, _) = call_if(app, "DELETE", path, Some(token), None, Some("*")).await;
    (status, body)
}

async fn access_token(
    app: &TestApp,
    client: &TestClient,
    phone: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let phone_token = app.phone_token(client, phone).await;
    app.exchange(client, &phone_token, extra).await
}

#[tokio::test]
async fn an_admin_changes_a_client_and_the_audiences_it_may_use() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let shop = app.acme().await;
    let path = format!("/admin/v1/clients/{}", shop.id);
    let ledger = [("audience", LEDGER), ("scope", "ledger:read")];
    let refused = access_token(&app, &shop, "+12025550180", &ledger).await;
    assert_error(refused, 400, "invalid_target").await;

    let (status, client) = patch(
        &app,
        &token,
        &path,
        json!({"name": "shop 2", "audiences": [ORDERS, LEDGER],
               "scopes": ["orders:read", "ledger:read"]}),
    )
    .await;

    assert_eq!(status, 200, "{client}");
    assert_eq!(client["name"], "shop 2");
    assert_eq!(client["default_audience"], ORDERS, "the default stays");
    app.clock.advance(60);
    let granted = access_token(&app, &shop, "+12025550180", &ledger).await;
    assert_eq!(granted.status(), 200);
    let (status, client) = patch(
        &app,
        &token,
        &path,
        json!({"audiences": [LEDGER], "scopes": ["ledger:read"]}),
    )
    .await;
    assert_eq!(status, 200, "{client}");
    assert_eq!(
        client["default_audience"], LEDGER,
        "the only audience becomes the default"
    );
    app.clock.advance(60);
    let orders = [("audience", ORDERS)];
    let refused = access_token(&app, &shop, "+12025550180", &orders).await;
    assert_error(refused, 400, "invalid_target").await;
    let (_, audit, _) = call(
        &app,
        "GET",
        &format!("/admin/v1/audit?action=client.updated&subject={}", shop.id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        audit["items"][0]["detail"],
        "audiences default_audience scopes"
    );
}

#[tokio::test]
async fn a_client_change_that_could_not_be_registered_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let shop = app.acme().await;
    let path = format!("/admin/v1/clients/{}", shop.id);
    let (_, before, _) = call(&app, "GET", &path, Some(&token), None).await;

    let cases = [
        (json!({"scopes": ["ledger:read"]}), "scopes"),
        (json!({"audiences": ["https://nowhere.test"]}), "audiences"),
        (json!({"grant_types": ["password"]}), "grant_types"),
        (
            json!({"grant_types": ["authorization_code"]}),
            "redirect_uris",
        ),
        (
            json!({"redirect_uris": ["http://app.example.test/cb"]}),
            "redirect_uris",
        ),
        (json!({"default_audience": LEDGER}), "default_audience"),
        (json!({"name": " "}), "name"),
        (json!({"public": true}), "body"),
        (json!({"active": "no"}), "body"),
    ];
    for (input, field) in cases {
        let (status, body) = patch(&app, &token, &path, input.clone()).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{input} → {body}"
        );
    }

    let (_, after, _) = call(&app, "GET", &path, Some(&token), None).await;
    assert_eq!(before, after);
    let tag = current_etag(&app, &token, &path).await;
    let same = json!({"name": before["name"], "scopes": before["scopes"]});
    let (status, _, headers) =
        call_if(&app, "PATCH", &path, Some(&token), Some(same), Some(&tag)).await;
    assert_eq!(
        (status, etag(&headers)),
        (200, tag),
        "a change to the same values is none"
    );
    let (status, _, _) = call_if(
        &app,
        "PATCH",
        "/admin/v1/clients/cl_nobody",
        Some(&token),
        Some(json!({"name": "x"})),
        Some("*"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        &app,
        "PATCH",
        &path,
        Some(&token),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 428);
}

#[tokio::test]
async fn a_disabled_client_cannot_authenticate_and_its_tokens_are_inactive() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let shop = app.acme().await;
    let resource_server = app.confidential_client(&[ORDERS], &[]).await;
    let answer: Value = access_token(&app, &shop, "+12025550181", &[])
        .await
        .json()
        .await
        .unwrap();
    let access = answer["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &resource_server, access).await["active"],
        true
    );
    let path = format!("/admin/v1/clients/{}", shop.id);

    let (status, client) = patch(&app, &token, &path, json!({"active": false})).await;

    assert_eq!((status, &client["active"]), (200, &json!(false)));
    assert_eq!(
        introspect(&app, &resource_server, access).await,
        json!({"active": false})
    );
    app.clock.advance(60);
    assert_eq!(app.start_otp(&shop, "+12025550181").await.status(), 401);
    let (status, client) = patch(&app, &token, &path, json!({"active": true})).await;
    assert_eq!((status, &client["active"]), (200, &json!(true)));
    assert_eq!(
        introspect(&app, &resource_server, access).await["active"],
        true
    );
    let (_, audit, _) = call(
        &app,
        "GET",
        "/admin/v1/audit?action=client.",
        Some(&token),
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["client.enabled", "client.disabled"]);
}

#[tokio::test]
async fn a_disabled_admin_client_administers_no_more() {
    let app = spawn_app().await;
    let (admin_client, token) = admin(&app).await;
    let path = format!("/admin/v1/clients/{}", admin_client.id);

    let (status, _) = patch(&app, &token, &path, json!({"active": false})).await;

    assert_eq!(status, 200);
    let (status, _, _) = call(&app, "GET", "/admin/v1/clients", Some(&token), None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn removals_that_would_break_clients_or_orphan_tokens_say_what_depends_on_them() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let web = web_client(&app, true).await;
    let scope = [("scope", "openid offline_access orders:read")];
    let code = code_for(&app, &web, "+12025550182", &scope).await;
    let tokens: Value = redeem(&app, &web, &code, &[]).await.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let client_path = format!("/admin/v1/clients/{}", web.id);
    let admin_audience = callsign::registry::admin_audience(&app.issuer);

    let (status, body) = delete(&app, &token, &audience_path(ORDERS)).await;
    assert_eq!(status, 409);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&web.id),
        "{body}"
    );
    let (status, _) = delete(&app, &token, &audience_path(&admin_audience)).await;
    assert_eq!(status, 409);
    let (status, body) = patch(&app, &token, &audience_path(ORDERS), json!({"scopes": []})).await;
    assert_eq!(status, 409);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&web.id),
        "{body}"
    );
    let (status, body) = delete(&app, &token, &client_path).await;
    assert_eq!(status, 409);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("refresh"),
        "{body}"
    );
    let (status, _, _) = call(&app, "GET", &client_path, Some(&token), None).await;
    assert_eq!(status, 200, "the refused removal changed nothing");

    let (status, _, _) = call_if(
        &app,
        "DELETE",
        &format!("{client_path}?revoke_tokens=true"),
        Some(&token),
        None,
        Some("*"),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = call(&app, "GET", &client_path, Some(&token), None).await;
    assert_eq!(status, 404);
    let mut form = web.auth();
    form.extend([
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ]);
    assert_error(app.post_form("/token", &form).await, 401, "invalid_client").await;
    let (status, body) = delete(&app, &token, &audience_path(ORDERS)).await;
    assert_eq!(status, 204, "nothing depends on it any more: {body}");
}

#[tokio::test]
async fn an_admin_reads_changes_and_deletes_an_audience() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let (status, _, _) = call(
        &app,
        "POST",
        "/admin/v1/audiences",
        Some(&token),
        Some(json!({"identifier": ORDERS, "scopes": ["orders:read"]})),
    )
    .await;
    assert_eq!(status, 201);
    let path = audience_path(ORDERS);

    let (status, read, _) = call(&app, "GET", &path, Some(&token), None).await;
    assert_eq!((status, &read["ttl"]), (200, &json!(900)));
    let (status, changed) = patch(
        &app,
        &token,
        &path,
        json!({"ttl": 300, "scopes": ["orders:read", "orders:write"]}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["ttl"], 300);
    let shop = app.confidential_client(&[ORDERS], &["orders:write"]).await;
    let answer: Value = access_token(&app, &shop, "+12025550183", &[("scope", "orders:write")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["expires_in"], 300);
    let (status, body) = patch(&app, &token, &path, json!({"ttl": 5})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("ttl")));
    let (status, body) = patch(&app, &token, &path, json!({"identifier": "x"})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("body")));

    let (status, _) = delete(&app, &token, &path).await;
    assert_eq!(status, 409, "the client still uses it");
    let client_path = format!("/admin/v1/clients/{}", shop.id);
    assert_eq!(delete(&app, &token, &client_path).await.0, 204);
    let (status, _, _) = call(&app, "DELETE", &path, Some(&token), None).await;
    assert_eq!(status, 428);
    let (status, _, _) = call_if(&app, "DELETE", &path, Some(&token), None, Some("\"1\"")).await;
    assert_eq!(status, 412, "the audience changed since version 1");
    let tag = current_etag(&app, &token, &path).await;
    let (status, _, _) = call_if(&app, "DELETE", &path, Some(&token), None, Some(&tag)).await;
    assert_eq!(status, 204);
    let (status, _, _) = call(&app, "GET", &path, Some(&token), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_audit_trail_is_filtered_by_action_actor_subject_and_time() {
    let app = spawn_app().await;
    let (admin_client, token) = admin(&app).await;
    let start = app.now();
    for name in ["a", "b", "c"] {
        let body = json!({"identifier": name});
        let (status, _, _) = call(
            &app,
            "POST",
            "/admin/v1/audiences",
            Some(&token),
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
        app.clock.advance(10);
    }
    let (status, created, _) = call(
        &app,
        "POST",
        "/admin/v1/clients",
        Some(&token),
        Some(json!({"name": "shop", "audiences": ["a"]})),
    )
    .await;
    assert_eq!(status, 201);
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let client_id = created["client_id"].as_str().unwrap().to_owned();

    let subjects = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let actor = format!("client:{}", admin_client.id);
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("action=audience.created".into(), vec!["c", "b", "a"]),
        ("action=audience.".into(), vec!["c", "b", "a"]),
        ("action=client.created".into(), vec![client_id.as_str()]),
        ("subject=b".into(), vec!["b"]),
        (
            format!("since={}&until={}&action=audience.", start + 10, start + 20),
            vec!["c", "b"],
        ),
        ("action=audience.&limit=1&offset=1".into(), vec!["b"]),
        (
            format!("actor={actor}&action=audience.&limit=2"),
            vec!["c", "b"],
        ),
        ("actor=client:someone".into(), vec![]),
    ];
    for (query, expected) in cases {
        let path = format!("/admin/v1/audit?{query}");
        let (status, list, _) = call(&app, "GET", &path, Some(&token), None).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(subjects(&list), expected, "{query}");
    }
    for query in ["limit=0", "limit=1001", "since=5&until=4", "since=soon"] {
        let path = format!("/admin/v1/audit?{query}");
        let (status, _, _) = call(&app, "GET", &path, Some(&token), None).await;
        assert_eq!(status, 400, "{query}");
    }
    let (_, all, _) = call(&app, "GET", "/admin/v1/audit", Some(&token), None).await;
    assert!(!all.to_string().contains(&secret));
}

#[tokio::test]
async fn the_openapi_document_describes_every_admin_route() {
    let app = spawn_app().await;

    let response = app.get("/admin/v1/openapi.json").await;

    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
    assert_eq!(document["servers"][0]["url"], app.issuer);
    let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    for path in [
        "/admin/v1/users",
        "/admin/v1/users/{id}",
        "/admin/v1/users/{id}/phones",
        "/admin/v1/users/{id}/phones/{phone}",
        "/admin/v1/phones/move",
        "/admin/v1/audiences",
        "/admin/v1/audiences/{identifier}",
        "/admin/v1/clients",
        "/admin/v1/clients/{id}",
        "/admin/v1/clients/{id}/secret",
        "/admin/v1/keys",
        "/admin/v1/keys/rotate",
        "/admin/v1/audit",
    ] {
        assert!(paths.iter().any(|p| *p == path), "{path} is missing");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let described = response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty());
                assert!(described, "{method} {path} {status} has no description");
            }
            for status in ["401", "403"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }
    let client_update = &document["components"]["schemas"]["ClientUpdate"];
    assert_eq!(client_update["additionalProperties"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_parallel_changes_based_on_one_etag_exactly_one_wins() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (_, token) = admin(&app).await;
    let shop = app.acme().await;
    let path = format!("/admin/v1/clients/{}", shop.id);
    let tag = current_etag(&app, &token, &path).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (app, token, path, tag) = (app.clone(), token.clone(), path.clone(), tag.clone());
        let body = json!({"name": format!("shop {i}")});
        tasks.spawn(async move {
            let (status, answer, _) =
                call_if(&app, "PATCH", &path, Some(&token), Some(body), Some(&tag)).await;
            (status, answer)
        });
    }
    let answers = tasks.join_all().await;

    let mut statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
    let (_, winner) = answers.iter().find(|(status, _)| *status == 200).unwrap();
    let (_, read, _) = call(&app, "GET", &path, Some(&token), None).await;
    assert_eq!(read["name"], winner["name"]);
}

#[tokio::test]
async fn an_audience_taken_from_a_client_is_taken_from_its_refreshes() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let web = web_client(&app, true).await;
    let scope = [("scope", "openid offline_access orders:read")];
    let code = code_for(&app, &web, "+12025550184", &scope).await;
    let tokens: Value = redeem(&app, &web, &code, &[]).await.json().await.unwrap();
    let path = format!("/admin/v1/clients/{}", web.id);
    let refresh = |refresh_token: &str, extra: &[(&'static str, &str)]| {
        let mut form = web.auth();
        form.extend([
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.to_owned()),
        ]);
        form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        form
    };

    let (status, _) = patch(
        &app,
        &token,
        &path,
        json!({"audiences": [], "scopes": ["openid", "offline_access"]}),
    )
    .await;

    assert_eq!(status, 200);
    let rt = tokens["refresh_token"].as_str().unwrap();
    let named = app
        .post_form("/token", &refresh(rt, &[("audience", ORDERS)]))
        .await;
    assert_error(named, 400, "invalid_target").await;
    let answer = app.post_form("/token", &refresh(rt, &[])).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let claims = crate::helpers::peek(answer["access_token"].as_str().unwrap()).1;
    assert!(!claims["aud"].to_string().contains(ORDERS), "{claims}");
    assert!(
        !claims["scope"].as_str().unwrap().contains("orders:read"),
        "{claims}"
    );
}

#[tokio::test]
async fn discovery_lists_the_scopes_an_admin_gives_and_takes_at_once() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    app.audience(LEDGER, &["ledger:read"]).await;
    let scopes = |document: Value| -> Vec<String> {
        document["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let before = scopes(app.get_json("/.well-known/openid-configuration").await);
    assert!(before.contains(&"ledger:read".to_owned()), "{before:?}");

    let path = audience_path(LEDGER);
    let (status, answer) = patch(&app, &token, &path, json!({"scopes": ["ledger:audit"]})).await;
    assert_eq!(status, 200, "{answer}");
    let changed = scopes(app.get_json("/.well-known/openid-configuration").await);
    assert!(changed.contains(&"ledger:audit".to_owned()), "{changed:?}");
    assert!(!changed.contains(&"ledger:read".to_owned()), "{changed:?}");

    let (status, answer) = delete(&app, &token, &path).await;
    assert_eq!(status, 204, "{answer}");
    let removed = scopes(
        app.get_json("/.well-known/oauth-authorization-server")
            .await,
    );
    assert!(!removed.contains(&"ledger:audit".to_owned()), "{removed:?}");
}

#[tokio::test]
async fn an_audience_removed_while_a_client_is_given_it_is_a_conflict_for_one_of_them() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (_, token) = admin(&app).await;
    let shop = app.acme().await;
    let client_path = format!("/admin/v1/clients/{}", shop.id);

    // The two requests race; whichever loses must say so with 409 (or 400 for an audience
    // already gone when the change is checked), never 412 or 500, and never both succeed.
    for round in 0..24 {
        let identifier = format!("race-{round}");
        let body = json!({"identifier": identifier, "scopes": []});
        let (status, answer, _) = call(
            &app,
            "POST",
            "/admin/v1/audiences",
            Some(&token),
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        let change = json!({"audiences": [ORDERS, identifier]});
        let give = {
            let (app, token, path) = (app.clone(), token.clone(), client_path.clone());
            tokio::spawn(async move {
                call_if(&app, "PATCH", &path, Some(&token), Some(change), Some("*")).await
            })
        };
        let remove = {
            let (app, token, path) = (app.clone(), token.clone(), audience_path(&identifier));
            tokio::spawn(async move { delete(&app, &token, &path).await })
        };
        let (given, _, _) = give.await.unwrap();
        let (removed, answer) = remove.await.unwrap();

        let (_, client, _) = call(&app, "GET", &client_path, Some(&token), None).await;
        let holds = client["audiences"]
            .as_array()
            .unwrap()
            .contains(&json!(identifier));
        match (given, removed) {
            (200, 409) => assert!(holds, "{client}"),
            (400 | 409, 204) => assert!(!holds, "{client}"),
            other => panic!("round {round}: {other:?}, {answer}, {client}"),
        }
    }
}

#[tokio::test]
async fn searches_and_filters_take_their_text_literally() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    let web = web_client(&app, true).await;
    let scope = [("scope", "openid offline_access orders:read")];
    let code = code_for(&app, &web, "+12025550186", &scope).await;
    let redeemed = redeem(&app, &web, &code, &[]).await;
    assert_eq!(redeemed.status(), 200);
    // `_` is a wildcard of SQL's LIKE; this identifier must not count the live refresh
    // token for the orders API as its own.
    let lookalike = "https://orders_api.example.test";
    let body = json!({"identifier": lookalike});
    let (status, _, _) = call(
        &app,
        "POST",
        "/admin/v1/audiences",
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(status, 201);

    let (status, answer) = delete(&app, &token, &audience_path(lookalike)).await;

    assert_eq!(status, 204, "{answer}");
    for search in ["%25", "_"] {
        let path = format!("/admin/v1/clients?search={search}");
        let (status, found, _) = call(&app, "GET", &path, Some(&token), None).await;
        assert_eq!(status, 200);
        assert_eq!(found["items"], json!([]), "{search}");
    }
    let (_, events, _) = call(
        &app,
        "GET",
        "/admin/v1/audit?action=%25.",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(events["items"], json!([]));
    let (_, events, _) = call(
        &app,
        "GET",
        "/admin/v1/audit?action=audience.",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2, "{events}");
}

#[tokio::test]
async fn a_client_can_always_be_disabled_even_when_its_settings_went_stale() {
    let app = spawn_app().await;
    let (_, token) = admin(&app).await;
    app.audience(ORDERS, &["orders:read"]).await;
    let shop = app.confidential_client(&[ORDERS], &["orders:read"]).await;
    // The scope the client lists is no longer defined, as after a change that raced.
    let removed = app
        .scalar(
            "DELETE FROM audience_scopes WHERE scope = 'orders:read' \
             RETURNING CAST(1 AS BIGINT)",
        )
        .await;
    assert_eq!(removed, 1);
    let path = format!("/admin/v1/clients/{}", shop.id);

    let rename = json!({"name": "Shop"});
    let (status, answer, _) =
        call_if(&app, "PATCH", &path, Some(&token), Some(rename), Some("*")).await;
    assert_eq!(
        status, 400,
        "other changes still pass every check: {answer}"
    );

    let disable = json!({"active": false});
    let (status, answer, _) =
        call_if(&app, "PATCH", &path, Some(&token), Some(disable), Some("*")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], false);
    let mut form = shop.auth();
    form.push(("grant_type", "client_credentials".to_owned()));
    let refused = app.post_form("/token", &form).await;
    assert_error(refused, 401, "invalid_client").await;
}
