//! `GET /authorize` and the sign-in pages: phone → code → consent → back to the client with
//! a code (RFC 6749 §4.1, RFC 7636, RFC 9207).
//!
//! The client and its redirect URI are checked first, by exact match (RFC 9700 §4.1.3);
//! until they pass, errors are shown on a page and nothing redirects. Every form carries a
//! per-sign-in CSRF token, every POST answers 303 (RFC 9700 §4.12), and the sign-in is
//! held in an HttpOnly cookie.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;
use super::extract::{Params, Peer};
use crate::clients::redirect_uri_matches;
use crate::crypto::{b64, constant_time_eq, random_bytes, random_id};
use crate::grants::authorization_code::{is_code_challenge, issue_code};
use crate::grants::sms_otp::{OtpStart, start_from_page, verify_code};
use crate::grants::{
    GrantError, GrantType, OPENID_SCOPES, resolve_scopes, resolve_targets, user_for_phone,
    userinfo_audience,
};
use crate::limits::source_address;
use crate::phone::Phone;
use crate::services::Services;
use crate::store::{ClientRecord, LoginRequest};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/authorize/phone", get(phone_page).post(submit_phone))
        .route("/authorize/code", get(code_page).post(submit_code))
        .route("/authorize/consent", get(consent_page).post(submit_consent))
        // The pages carry per-sign-in CSRF tokens and redirects carry codes: never cached.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/phone.html")]
struct PhonePage<'a> {
    app: &'a str,
    csrf: &'a str,
    action: &'a str,
    error: Option<&'a str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/code.html")]
struct CodePage<'a> {
    app: &'a str,
    csrf: &'a str,
    action: &'a str,
    phone: &'a str,
    length: u32,
    change: &'a str,
    error: Option<&'a str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/consent.html")]
struct ConsentPage<'a> {
    app: &'a str,
    csrf: &'a str,
    action: &'a str,
    scopes: Vec<&'a str>,
    audiences: &'a [String],
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        title: "This sign-in link is not valid",
        message,
    };
    (status, page).into_response()
}

fn server_error(error: &dyn std::error::Error) -> Response {
    tracing::error!(error = %error, "sign-in failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. Try again.",
    )
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "The redirect address is not valid.",
        ),
    }
}

/// The client's redirect URI with the answer's parameters, `state` and `iss` added.
fn back_to_client(services: &Services, login: &Target, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(&login.redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect address is not valid.",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in pairs {
            query.append_pair(key, value);
        }
        if let Some(state) = &login.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &services.issuer);
    }
    see_other(url.as_str())
}

/// Where answers go: known once the client and redirect URI have been checked.
struct Target {
    redirect_uri: String,
    state: Option<String>,
}

fn error_to_client(
    services: &Services,
    target: &Target,
    error: &str,
    description: &str,
) -> Response {
    back_to_client(
        services,
        target,
        &[("error", error), ("error_description", description)],
    )
}

async fn authorize(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let services = &state.services;
    let params = Params::from_pairs(pairs);
    let (Ok(client_id), Ok(redirect_uri), Ok(client_state)) = (
        params.single("client_id"),
        params.single("redirect_uri"),
        params.single("state"),
    ) else {
        return error_page(StatusCode::BAD_REQUEST, "The request repeats a parameter.");
    };
    let Some(client_id) = client_id else {
        return error_page(StatusCode::BAD_REQUEST, "The request names no app.");
    };
    let client = match services.store.client(client_id).await {
        Ok(Some(client)) if client.active => client,
        Ok(_) => return error_page(StatusCode::BAD_REQUEST, "The request names an unknown app."),
        Err(e) => return server_error(&e),
    };
    let registered = &client.redirect_uris;
    let (redirect_uri, explicit) = match redirect_uri {
        Some(uri) if registered.iter().any(|r| redirect_uri_matches(r, uri)) => {
            (uri.to_owned(), true)
        }
        None if registered.len() == 1 => (registered[0].clone(), false),
        _ => {
            let message = "The address to return to is not registered for this app.";
            return error_page(StatusCode::BAD_REQUEST, message);
        }
    };
    let target = Target {
        redirect_uri,
        state: client_state.map(str::to_owned),
    };

    // From here on, errors go back to the client.
    let login = match check_request(services, &client, &params, &target, explicit).await {
        Ok(login) => login,
        Err((error, description)) => return error_to_client(services, &target, error, description),
    };
    if let Err(e) = services.store.insert_login(&login).await {
        return server_error(&e);
    }
    let page = PhonePage {
        app: &client.name,
        csrf: &login.csrf,
        action: &action(services, "phone"),
        error: None,
    };
    let mut response = page.into_response();
    set_login_cookie(
        services,
        &mut response,
        &login.id,
        services.settings.tokens.login_ttl,
    );
    response
}

/// The checks of RFC 6749 §4.1.1, RFC 7636 §4.3 and the audience and scope rules.
async fn check_request(
    services: &Services,
    client: &ClientRecord,
    params: &Params,
    target: &Target,
    redirect_explicit: bool,
) -> Result<LoginRequest, (&'static str, &'static str)> {
    let repeated = ("invalid_request", "a parameter is repeated");
    let response_type = params.single("response_type").map_err(|_| repeated)?;
    match response_type {
        Some("code") => {}
        None => return Err(("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    // OpenID Connect Core §6: request objects are not supported.
    if params.single("request").map_err(|_| repeated)?.is_some() {
        return Err(("request_not_supported", "request objects are not supported"));
    }
    if params
        .single("request_uri")
        .map_err(|_| repeated)?
        .is_some()
    {
        return Err(("request_uri_not_supported", "request_uri is not supported"));
    }
    // OpenID Connect Core §3.1.2.1: prompt=none may show no page, and signing in always
    // needs one (there are no browser sessions to reuse).
    let prompt = params
        .single("prompt")
        .map_err(|_| repeated)?
        .unwrap_or_default();
    if prompt.split(' ').any(|p| p == "none") {
        if prompt != "none" {
            return Err((
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
        return Err(("login_required", "signing in needs the sign-in pages"));
    }
    if !client
        .grant_types
        .iter()
        .any(|g| g == GrantType::AuthorizationCode.as_wire())
    {
        return Err((
            "unauthorized_client",
            "the client may not use the authorization code flow",
        ));
    }
    // PKCE is required of every client, and only S256 (RFC 9700 §2.1.1).
    let challenge = params.single("code_challenge").map_err(|_| repeated)?;
    let method = params
        .single("code_challenge_method")
        .map_err(|_| repeated)?;
    let challenge = match (challenge, method) {
        (Some(challenge), Some("S256")) if is_code_challenge(challenge) => challenge,
        (None, _) => return Err(("invalid_request", "code_challenge is required (PKCE, S256)")),
        _ => return Err(("invalid_request", "code_challenge_method must be S256")),
    };
    let scope = params.single("scope").map_err(|_| repeated)?;
    let nonce = params.single("nonce").map_err(|_| repeated)?;
    let audiences = params.all("audience");
    let resources = params.all("resource");
    let scopes_requested = scope.and_then(crate::scope::parse).unwrap_or_default();
    let openid = scopes_requested.iter().any(|s| s == "openid");

    let mut targets = if audiences.is_empty()
        && resources.is_empty()
        && client.default_audience.is_none()
        && openid
    {
        Vec::new()
    } else {
        resolve_targets(client, &audiences, &resources).map_err(|e| match e {
            GrantError::Store(_) => ("server_error", "the server could not complete the request"),
            _ => (
                "invalid_target",
                "a requested audience is not available to this client",
            ),
        })?
    };
    let scopes = resolve_scopes(client, &targets, scope, None).map_err(|_| {
        (
            "invalid_scope",
            "a requested scope is not available to this client",
        )
    })?;
    if openid {
        targets.push(userinfo_audience(&services.issuer));
    }
    let now = services.clock.now();
    Ok(LoginRequest {
        id: random_id("login_"),
        csrf: b64(&random_bytes::<24>()),
        client_id: client.id.clone(),
        redirect_uri: target.redirect_uri.clone(),
        redirect_explicit,
        scope: scopes,
        audiences: targets.into_iter().map(|t| t.identifier).collect(),
        state: target.state.clone(),
        nonce: nonce.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        phone: None,
        user_id: None,
        auth_time: None,
        created_at: now,
        expires_at: now + services.settings.tokens.login_ttl,
    })
}

/// Why a sign-in page cannot go on.
enum Refusal {
    /// No sign-in in this browser, or it has expired.
    Expired,
    /// The form's CSRF token is not the sign-in's.
    StaleForm,
    /// The failure was logged where it happened.
    Server,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Expired => error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired. Go back to the app and start again.",
            ),
            Refusal::StaleForm => error_page(
                StatusCode::FORBIDDEN,
                "This form has expired. Go back to the app and start again.",
            ),
            Refusal::Server => error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Try again.",
            ),
        }
    }
}

fn logged(error: &dyn std::error::Error) -> Refusal {
    tracing::error!(error = %error, "sign-in failed");
    Refusal::Server
}

/// The sign-in of this browser, with its client.
async fn current_login(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(LoginRequest, ClientRecord), Refusal> {
    let services = &state.services;
    let id = login_cookie(services, headers).ok_or(Refusal::Expired)?;
    let now = services.clock.now();
    let login = services
        .store
        .login(&id, now)
        .await
        .map_err(|e| logged(&e))?;
    let login = login.ok_or(Refusal::Expired)?;
    match services.store.client(&login.client_id).await {
        Ok(Some(client)) if client.active => Ok((login, client)),
        Ok(_) => Err(Refusal::Expired),
        Err(e) => Err(logged(&e)),
    }
}

/// The sign-in a form was posted for, and the form, once its CSRF token matched.
async fn posted_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<(LoginRequest, ClientRecord, Params), Refusal> {
    let (login, client) = current_login(state, headers).await?;
    // A body too large or unreadable is a stale form as far as a person can tell.
    let body = body.map_err(|_| Refusal::StaleForm)?;
    let params = Params::from_pairs(form_urlencoded::parse(&body).into_owned().collect());
    let csrf = params.single("csrf").ok().flatten().unwrap_or_default();
    if !constant_time_eq(csrf.as_bytes(), login.csrf.as_bytes()) {
        return Err(Refusal::StaleForm);
    }
    Ok((login, client, params))
}

async fn phone_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let (login, client) = match current_login(&state, &headers).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let error = query
        .iter()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| match v.as_str() {
            "wait" => "A code was sent a moment ago. Wait a little before asking for another.",
            "unavailable" => "The code could not be sent. Try again in a moment.",
            "locked" => {
                "Too many wrong codes were entered for this number, so it is locked. \
                 Ask the service's support to unlock it."
            }
            _ => "That does not look like a phone number. Include the country code, like +44.",
        });
    PhonePage {
        app: &client.name,
        csrf: &login.csrf,
        action: &action(&state.services, "phone"),
        error,
    }
    .into_response()
}

async fn submit_phone(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let (login, client, params) = match posted_form(&state, &headers, body).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let typed = params
        .single("phone_number")
        .ok()
        .flatten()
        .unwrap_or_default();
    let retry = |reason: &str| see_other(&format!("{}?error={reason}", action(services, "phone")));
    let Ok(phone) = Phone::parse(typed, services.settings.default_region) else {
        return retry("phone");
    };
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let request = OtpStart {
        phone_number: phone.e164(),
        ui_locales: None,
        source: source_address(peer, &forwarded, &services.settings.limits.trusted_proxies),
    };
    match start_from_page(services, &client, request).await {
        Ok(None) => {}
        Ok(Some(reason)) => return retry(reason),
        Err(e) => return server_error(&e),
    }
    if let Err(e) = services
        .store
        .set_login_phone(&login.id, phone.e164())
        .await
    {
        return server_error(&e);
    }
    see_other(&action(services, "code"))
}

async fn code_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let services = &state.services;
    let (login, client) = match current_login(&state, &headers).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(phone) = login.phone.clone() else {
        return see_other(&action(services, "phone"));
    };
    let masked = Phone::from_e164(phone).masked();
    let error = query
        .iter()
        .any(|(k, _)| k == "error")
        .then_some("That code is not right, or it has expired.");
    let page = CodePage {
        app: &client.name,
        csrf: &login.csrf,
        action: &action(services, "code"),
        phone: &masked,
        length: services.settings.otp.length,
        change: &action(services, "phone"),
        error,
    };
    page.into_response()
}

async fn submit_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let (login, client, params) = match posted_form(&state, &headers, body).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(phone) = login.phone.clone() else {
        return see_other(&action(services, "phone"));
    };
    let code = params
        .single("otp")
        .ok()
        .flatten()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let target = Target {
        redirect_uri: login.redirect_uri.clone(),
        state: login.state.clone(),
    };
    let record = match verify_code(services, &client, &Phone::from_e164(phone), &code).await {
        Ok(record) => record,
        Err(GrantError::Store(e)) => return server_error(&e),
        Err(_) => return see_other(&format!("{}?error=code", action(services, "code"))),
    };
    let user_id = match user_for_phone(services, &record).await {
        Ok(user_id) => user_id,
        Err(GrantError::SignupDisabled | GrantError::UserDisabled | GrantError::PhoneGone) => {
            let _ = services.store.finish_login(&login.id).await;
            return error_to_client(
                services,
                &target,
                "access_denied",
                "the user may not sign in",
            );
        }
        Err(e) => return server_error(&e),
    };
    let now = services.clock.now();
    if let Err(e) = services
        .store
        .set_login_user(&login.id, &user_id, now)
        .await
    {
        return server_error(&e);
    }
    let login = LoginRequest {
        user_id: Some(user_id.clone()),
        auth_time: Some(now),
        ..login
    };
    let remembered = match services.store.consent(&user_id, &client.id).await {
        Ok(consent) => consent.is_some_and(|(scopes, audiences)| {
            login.scope.iter().all(|s| scopes.contains(s))
                && login.audiences.iter().all(|a| audiences.contains(a))
        }),
        Err(e) => return server_error(&e),
    };
    if client.first_party || remembered {
        return finish(services, &login).await;
    }
    see_other(&action(services, "consent"))
}

async fn consent_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let services = &state.services;
    let (login, client) = match current_login(&state, &headers).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    if login.user_id.is_none() {
        return see_other(&action(services, "phone"));
    }
    let scopes = login
        .scope
        .iter()
        .filter(|s| *s != "openid")
        .map(|s| describe_scope(s))
        .collect();
    let userinfo = userinfo_audience(&services.issuer).identifier;
    let audiences: Vec<String> = login
        .audiences
        .iter()
        .filter(|a| **a != userinfo)
        .cloned()
        .collect();
    let page = ConsentPage {
        app: &client.name,
        csrf: &login.csrf,
        action: &action(services, "consent"),
        scopes,
        audiences: &audiences,
    };
    page.into_response()
}

async fn submit_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let (login, client, params) = match posted_form(&state, &headers, body).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(user_id) = login.user_id.clone() else {
        return see_other(&action(services, "phone"));
    };
    if params.single("decision").ok().flatten() != Some("allow") {
        let _ = services.store.finish_login(&login.id).await;
        let target = Target {
            redirect_uri: login.redirect_uri.clone(),
            state: login.state.clone(),
        };
        return error_to_client(services, &target, "access_denied", "the user declined");
    }
    let now = services.clock.now();
    if let Err(e) = services
        .store
        .save_consent(&user_id, &client.id, &login.scope, &login.audiences, now)
        .await
    {
        return server_error(&e);
    }
    finish(services, &login).await
}

/// Ends the sign-in: one code, once, back to the client.
async fn finish(services: &Services, login: &LoginRequest) -> Response {
    match services.store.finish_login(&login.id).await {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in has already finished.",
            );
        }
        Err(e) => return server_error(&e),
    }
    let code = match issue_code(services, login).await {
        Ok(code) => code,
        Err(e) => return server_error(&e),
    };
    let target = Target {
        redirect_uri: login.redirect_uri.clone(),
        state: login.state.clone(),
    };
    let mut response = back_to_client(services, &target, &[("code", &code)]);
    set_login_cookie(services, &mut response, "", 0);
    response
}

/// The absolute URL of a sign-in step.
fn action(services: &Services, step: &str) -> String {
    format!("{}/authorize/{step}", services.issuer)
}

/// `__Host-` cookies need https; plain http is for loopback development only.
fn cookie_name(services: &Services) -> &'static str {
    if services.issuer.starts_with("https://") {
        "__Host-callsign_login"
    } else {
        "callsign_login"
    }
}

fn set_login_cookie(services: &Services, response: &mut Response, id: &str, max_age: i64) {
    let secure = if services.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(services)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn login_cookie(services: &Services, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(services);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// Scopes a person is asked about: what they mean, in words.
fn describe_scope(scope: &str) -> &str {
    match scope {
        "phone" => "Your phone number",
        "offline_access" => "Stay signed in",
        _ if OPENID_SCOPES.contains(&scope) => "Your sign-in",
        other => other,
    }
}
