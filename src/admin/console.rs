//! The admin console at `/admin`: server-rendered pages that work without JavaScript.
//!
//! Signing in takes a phone and the SMS code sent to it, through the same challenge and
//! send limits as every other sign-in, and then the admin role. Every form carries the
//! session's CSRF token and every post answers with a page or a 303. Every change lands in
//! the audit trail with the signed-in user as actor.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;

use super::registrations::{self, AudienceChanges, ClientChanges};
use super::session::{self, Console, console_path, server_error};
use super::{Actor, ChangeError, Expected};
use crate::clock::format_utc;
use crate::crypto::constant_time_eq;
use crate::grants::GrantError;
use crate::grants::sms_otp::{OtpStart, start_from_page, verify_code};
use crate::http::AppState;
use crate::http::extract::{Params, Peer, parse_form};
use crate::keys::Purpose;
use crate::limits::source_address;
use crate::phone::Phone;
use crate::registry::{self, NewAudience, NewClient, RegistryError};
use crate::services::Services;
use crate::store::{ADMIN_ROLE, AuditEvent, AuditFilter, ClientKind, ClientRecord, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/login", get(login_page).post(submit_phone))
        .route("/admin/login/code", get(code_page).post(submit_code))
        .route("/admin/logout", post(logout))
        .route("/admin/clients", get(clients))
        .route("/admin/clients/new", get(new_client).post(create_client))
        .route("/admin/clients/{id}", get(client).post(update_client))
        .route("/admin/clients/{id}/secret", post(rotate_secret))
        .route("/admin/audiences", get(audiences).post(create_audience))
        .route("/admin/audiences/edit", get(audience).post(update_audience))
        .route("/admin/keys", get(keys))
        .route("/admin/keys/rotate", post(rotate_keys))
        .route("/admin/audit", get(audit))
        .merge(super::people::router())
        // Pages carry CSRF tokens and secrets: never cached, never framed, and never named
        // to another site. (`no-referrer` would make browsers send `Origin: null` on the
        // console's own forms.)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// The id of the client the console's SMS challenges are recorded under.
pub const CONSOLE_CLIENT_ID: &str = "callsign-admin-console";

#[derive(Template, WebTemplate)]
#[template(path = "admin/message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    base: &'a str,
}

/// A page with a title and a sentence, such as a refusal.
pub fn message_page(status: StatusCode, base: &str, title: &str, message: &str) -> Response {
    let page = MessagePage {
        title,
        message,
        base,
    };
    (status, page).into_response()
}

// TODO: the link back is always `/admin`, wrong under an issuer with a path; these pages
// are built in places (extractors, redirects) that do not have the issuer at hand.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    message_page(status, "/admin", "The console cannot do that", message)
}

pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => error_page(StatusCode::BAD_REQUEST, "That address is not valid."),
    }
}

/// What every signed-in page shows around its content.
pub struct Frame {
    pub base: String,
    pub csrf: String,
    pub section: &'static str,
    pub notice: Option<String>,
}

impl Frame {
    pub fn new(services: &Services, console: &Console, section: &'static str) -> Self {
        Self {
            base: console_path(services),
            csrf: console.csrf.clone(),
            section,
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<&str>) -> Self {
        self.notice = notice.map(str::to_owned);
        self
    }
}

/// `?done=` names what the previous post did, so the page it redirects to can say so.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    pub done: Option<String>,
    pub search: Option<String>,
}

/// Records a console change in the audit trail, naming the signed-in user.
pub async fn audit_change(
    services: &Services,
    console: &Console,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), StoreError> {
    super::audit(
        services,
        &console.actor(),
        action,
        subject,
        detail.to_owned(),
    )
    .await
}

// ---- signing in ----

#[derive(Template, WebTemplate)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    base: &'a str,
    csrf: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/code.html")]
struct CodePage<'a> {
    base: &'a str,
    csrf: &'a str,
    phone: &'a str,
    length: u32,
    error: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    error: Option<String>,
    signed_out: Option<String>,
    expired: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let services = &state.services;
    let base = console_path(services);
    let existing = match session::current(services, &headers).await {
        Ok(existing) => existing,
        Err(response) => return response,
    };
    if let Some((_, found)) = &existing
        && found.user_id.is_some()
    {
        return see_other(&base);
    }
    let error = query.error.as_deref().map(|reason| match reason {
        "wait" => "A code was sent a moment ago. Wait a little before asking for another.",
        "unavailable" => "The code could not be sent. Try again in a moment.",
        "locked" => {
            "Too many wrong codes were entered for this number, so it is locked. An operator \
             can unlock it with `callsign phone unlock`."
        }
        _ => "That does not look like a phone number. Include the country code, like +44.",
    });
    let notice = if query.signed_out.is_some() {
        Some("You are signed out.")
    } else if query.expired.is_some() {
        Some("Your sign-in expired. Sign in again.")
    } else {
        None
    };
    // A sign-in already under way in this browser keeps its token; otherwise a new one.
    if let Some((_, found)) = existing {
        let page = LoginPage {
            base: &base,
            csrf: &found.csrf,
            notice,
            error,
        };
        return page.into_response();
    }
    let csrf = session::new_csrf();
    let page = LoginPage {
        base: &base,
        csrf: &csrf,
        notice,
        error,
    };
    let mut response = page.into_response();
    let window = services.settings.tokens.login_ttl;
    if let Err(response) = session::open(services, &mut response, None, &csrf, window).await {
        return response;
    }
    response
}

/// The session of a sign-in under way, once the posted form's token matched.
async fn pending_form(
    services: &Services,
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<(Vec<u8>, crate::store::ConsoleSession, Params), Response> {
    if !session::same_site(services, headers) {
        return Err(session::cross_site());
    }
    let expired = || see_other(&format!("{}/login?expired", console_path(services)));
    let Some((hash, found)) = session::current(services, headers).await? else {
        return Err(expired());
    };
    let body = body.map_err(|_| expired())?;
    let params = parse_form(&body);
    let csrf = params.single("csrf").ok().flatten().unwrap_or_default();
    if !constant_time_eq(csrf.as_bytes(), found.csrf.as_bytes()) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired. Go back, reload the page and try again.",
        ));
    }
    Ok((hash, found, params))
}

fn forwarded(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect()
}

fn trusted(services: &Services) -> &[crate::config::IpRange] {
    &services.settings.limits.trusted_proxies
}

/// The client the console's challenges belong to, registered on first use. It has no
/// grant type and is disabled, so no endpoint accepts it from outside.
async fn console_client(services: &Services) -> Result<ClientRecord, StoreError> {
    if let Some(client) = services.store.client(CONSOLE_CLIENT_ID).await? {
        return Ok(client);
    }
    let client = ClientRecord {
        id: CONSOLE_CLIENT_ID.to_owned(),
        name: "callsign admin console".to_owned(),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: Vec::new(),
        redirect_uris: Vec::new(),
        scopes: Vec::new(),
        audiences: Vec::new(),
        audience_records: Vec::new(),
        default_audience: None,
        first_party: true,
        active: false,
        created_at: services.clock.now(),
        version: 1,
    };
    match services.store.insert_client(&client).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(e) => return Err(e),
    }
    services
        .store
        .client(CONSOLE_CLIENT_ID)
        .await?
        .ok_or(StoreError::MissingReference)
}

async fn submit_phone(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let base = console_path(services);
    let (hash, _, params) = match pending_form(services, &headers, body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let retry = |reason: &str| see_other(&format!("{base}/login?error={reason}"));
    let typed = params
        .single("phone_number")
        .ok()
        .flatten()
        .unwrap_or_default();
    let Ok(phone) = Phone::parse(typed, services.settings.default_region) else {
        return retry("phone");
    };
    let client = match console_client(services).await {
        Ok(client) => client,
        Err(e) => return server_error(&e),
    };
    let request = OtpStart {
        phone_number: phone.e164(),
        ui_locales: None,
        source: source_address(peer, &forwarded(&headers), trusted(services)),
    };
    // The same answer whether or not the phone is known: the role is checked only once
    // the code has proved the phone.
    match start_from_page(services, &client, request).await {
        Ok(None) => {}
        Ok(Some(reason)) => return retry(reason),
        Err(e) => return server_error(&e),
    }
    if let Err(e) = services.store.set_console_phone(&hash, phone.e164()).await {
        return server_error(&e);
    }
    see_other(&format!("{base}/login/code"))
}

async fn code_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let services = &state.services;
    let base = console_path(services);
    let found = match session::current(services, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some((_, found)) = found else {
        return see_other(&format!("{base}/login?expired"));
    };
    let Some(phone) = found.phone else {
        return see_other(&format!("{base}/login"));
    };
    let masked = Phone::from_e164(phone).masked();
    let error = query
        .iter()
        .any(|(k, _)| k == "error")
        .then_some("That code is not right, or it has expired.");
    CodePage {
        base: &base,
        csrf: &found.csrf,
        phone: &masked,
        length: services.settings.otp.length,
        error,
    }
    .into_response()
}

async fn submit_code(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let base = console_path(services);
    let (hash, found, params) = match pending_form(services, &headers, body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(phone) = found.phone else {
        return see_other(&format!("{base}/login"));
    };
    let phone = Phone::from_e164(phone);
    let code = params
        .single("otp")
        .ok()
        .flatten()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let client = match console_client(services).await {
        Ok(client) => client,
        Err(e) => return server_error(&e),
    };
    let record = match verify_code(services, &client, &phone, &code).await {
        Ok(record) => record,
        Err(GrantError::Store(e)) => return server_error(&e),
        Err(_) => return see_other(&format!("{base}/login/code?error=code")),
    };
    // The sign-in under way ends here, whatever comes next.
    if let Err(e) = services.store.delete_console_session(&hash).await {
        return server_error(&e);
    }
    let admin = match &record.user_id {
        Some(user_id) => match services.store.has_role(user_id, ADMIN_ROLE).await {
            Ok(true) => Some(user_id.clone()),
            Ok(false) => None,
            Err(e) => return server_error(&e),
        },
        None => None,
    };
    let Some(user_id) = admin else {
        tracing::warn!(phone = %phone, "console sign-in refused: no admin role");
        let mut response = message_page(
            StatusCode::FORBIDDEN,
            &base,
            "No access to the admin console",
            "This phone does not give access to the admin console. An operator can grant it \
             with `callsign admin grant --phone`.",
        );
        session::set_cookie(services, &mut response, "", 0);
        return response;
    };
    // A new cookie value and a new CSRF token once signed in (no session fixation).
    let mut response = see_other(&base);
    let lifetime = services.settings.console.max_lifetime;
    let csrf = session::new_csrf();
    if let Err(response) =
        session::open(services, &mut response, Some(&user_id), &csrf, lifetime).await
    {
        return response;
    }
    let actor = Actor {
        name: format!("user:{user_id}"),
        address: source_address(peer, &forwarded(&headers), trusted(services)).to_string(),
    };
    let signed_in = super::audit(
        services,
        &actor,
        "console.signed_in",
        &user_id,
        String::new(),
    );
    if let Err(e) = signed_in.await {
        return server_error(&e);
    }
    tracing::info!(user_id = %user_id, "console sign-in");
    response
}

async fn logout(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    if let Err(stale) = console.form(body) {
        return stale.into_response();
    }
    if let Err(e) = services
        .store
        .delete_console_session(&console.id_hash)
        .await
    {
        return server_error(&e);
    }
    let mut response = see_other(&format!("{}/login?signed_out", console_path(services)));
    session::set_cookie(services, &mut response, "", 0);
    response
}

// ---- overview, keys, audit ----

pub struct EventRow {
    at: String,
    actor: String,
    action: String,
    subject: String,
    detail: String,
    address: String,
}

fn event_rows(events: Vec<AuditEvent>) -> Vec<EventRow> {
    events
        .into_iter()
        .map(|e| EventRow {
            at: format_utc(e.at),
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
            address: e.address,
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    frame: Frame,
    counts: crate::store::Counts,
    /// Purpose, active kid, next kid (empty when none).
    keys: Vec<(String, String, String)>,
    events: Vec<EventRow>,
}

async fn overview(State(state): State<AppState>, console: Console) -> Response {
    let services = &state.services;
    let store = &services.store;
    let (counts, records, events) = match (
        store.counts().await,
        store.signing_keys().await,
        store.audit_events_where(&latest(10)).await,
    ) {
        (Ok(counts), Ok(records), Ok(events)) => (counts, records, events),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return server_error(&e),
    };
    let keys = Purpose::ALL
        .iter()
        .map(|purpose| {
            let kid_in = |state: &str| {
                records
                    .iter()
                    .find(|k| k.purpose == purpose.as_str() && k.state == state)
                    .map(|k| k.kid.clone())
                    .unwrap_or_default()
            };
            (
                purpose.as_str().to_owned(),
                kid_in("active"),
                kid_in("next"),
            )
        })
        .collect();
    OverviewPage {
        frame: Frame::new(services, &console, "overview"),
        counts,
        keys,
        events: event_rows(events),
    }
    .into_response()
}

struct KeyRow {
    kid: String,
    purpose: String,
    algorithm: String,
    state: String,
    created_at: String,
    activate_at: String,
    retired_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyRow>,
}

async fn keys(
    State(state): State<AppState>,
    console: Console,
    Query(done): Query<Done>,
) -> Response {
    let services = &state.services;
    let records = match services.store.signing_keys().await {
        Ok(records) => records,
        Err(e) => return server_error(&e),
    };
    let time = |t: Option<i64>| t.map(format_utc).unwrap_or_default();
    let keys = records
        .into_iter()
        .map(|k| KeyRow {
            created_at: format_utc(k.created_at),
            activate_at: time(k.activate_at.or(k.activated_at)),
            retired_at: time(k.retired_at),
            kid: k.kid,
            purpose: k.purpose,
            algorithm: k.algorithm,
            state: k.state,
        })
        .collect();
    let notice = done.done.as_deref().map(|_| "A new key is published.");
    KeysPage {
        frame: Frame::new(services, &console, "keys").with_notice(notice),
        keys,
    }
    .into_response()
}

async fn rotate_keys(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let purposes = match params.single("purpose").ok().flatten() {
        None => Purpose::ALL.to_vec(),
        Some(name) => match Purpose::parse(name) {
            Some(purpose) => vec![purpose],
            None => return error_page(StatusCode::BAD_REQUEST, "There is no such key purpose."),
        },
    };
    let actor = console.actor();
    for purpose in purposes {
        let next = match services.keys.rotate(purpose, &actor.name).await {
            Ok(next) => next,
            Err(e) => return server_error(&e),
        };
        // The key's own events carry no address; this one says who asked, from where, as
        // the API's rotation does.
        let detail = purpose.as_str().to_owned();
        let requested = super::audit(
            services,
            &actor,
            "key.rotation_requested",
            &next.kid,
            detail,
        );
        if let Err(e) = requested.await {
            return server_error(&e);
        }
    }
    see_other(&format!("{}/keys?done=rotated", console_path(services)))
}

/// The newest `limit` events, unfiltered.
fn latest(limit: i64) -> AuditFilter {
    AuditFilter {
        action: String::new(),
        actor: String::new(),
        subject: String::new(),
        since: None,
        until: None,
        limit,
        offset: 0,
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    subject: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    frame: Frame,
    query: AuditQuery,
    events: Vec<EventRow>,
}

async fn audit(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<AuditQuery>,
) -> Response {
    let services = &state.services;
    let filter = AuditFilter {
        action: query.action.trim().to_owned(),
        actor: query.actor.trim().to_owned(),
        subject: query.subject.trim().to_owned(),
        ..latest(200)
    };
    let events = match services.store.audit_events_where(&filter).await {
        Ok(events) => events,
        Err(e) => return server_error(&e),
    };
    AuditPage {
        frame: Frame::new(services, &console, "audit"),
        query,
        events: event_rows(events),
    }
    .into_response()
}

// ---- audiences ----

struct AudienceRow {
    identifier: String,
    scopes: String,
    ttl: i64,
    created_at: String,
}

#[derive(Debug, Default)]
struct AudienceForm {
    identifier: String,
    scopes: String,
    ttl: String,
}

impl AudienceForm {
    /// The audience fields of a submitted form, as typed.
    fn read(params: &Params) -> AudienceForm {
        AudienceForm {
            identifier: params.text("identifier"),
            scopes: params.text("scopes"),
            ttl: params.text("ttl"),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audiences.html")]
struct AudiencesPage {
    frame: Frame,
    audiences: Vec<AudienceRow>,
    form: AudienceForm,
    error: Option<String>,
}

async fn audiences_page(
    services: &Services,
    console: &Console,
    form: AudienceForm,
    error: Option<String>,
    notice: Option<&str>,
) -> Response {
    let records = match services.store.list_audiences(500, 0).await {
        Ok(records) => records,
        Err(e) => return server_error(&e),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = AudiencesPage {
        frame: Frame::new(services, console, "audiences").with_notice(notice),
        audiences: records
            .into_iter()
            .map(|a| AudienceRow {
                scopes: a.scopes.join(" "),
                ttl: a.access_token_ttl,
                created_at: format_utc(a.created_at),
                identifier: a.identifier,
            })
            .collect(),
        form,
        error,
    };
    (status, page).into_response()
}

async fn audiences(
    State(state): State<AppState>,
    console: Console,
    Query(done): Query<Done>,
) -> Response {
    let notice = done.done.as_deref().map(|_| "The audience is registered.");
    audiences_page(
        &state.services,
        &console,
        AudienceForm::default(),
        None,
        notice,
    )
    .await
}

async fn create_audience(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let form = AudienceForm::read(&params);
    let ttl = if form.ttl.is_empty() {
        None
    } else {
        match form.ttl.parse::<i64>() {
            Ok(ttl) => Some(ttl),
            Err(_) => {
                let error = Some("ttl: must be a whole number of seconds".to_owned());
                return audiences_page(services, &console, form, error, None).await;
            }
        }
    };
    let new = NewAudience {
        identifier: form.identifier.clone(),
        scopes: form.scopes.split_whitespace().map(str::to_owned).collect(),
        ttl,
    };
    match registry::create_audience(&services.store, services.clock.as_ref(), new).await {
        Ok(audience) => {
            let detail = format!("scopes {}", audience.scopes.join(" "));
            let subject = &audience.identifier;
            if let Err(e) =
                audit_change(services, &console, "audience.created", subject, &detail).await
            {
                return server_error(&e);
            }
            see_other(&format!(
                "{}/audiences?done=created",
                console_path(services)
            ))
        }
        Err(RegistryError::Store(e)) => server_error(&e),
        Err(e) => audiences_page(services, &console, form, Some(e.to_string()), None).await,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audience.html")]
struct AudiencePage {
    frame: Frame,
    identifier: String,
    version: i64,
    scopes: String,
    ttl: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AudienceQuery {
    #[serde(default)]
    identifier: String,
    done: Option<String>,
}

async fn audience_page(
    services: &Services,
    console: &Console,
    identifier: &str,
    typed: Option<AudienceForm>,
    refused: Option<(StatusCode, String)>,
    notice: Option<&str>,
) -> Response {
    let record = match services.store.audience(identifier).await {
        Ok(Some(record)) => record,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "There is no such audience."),
        Err(e) => return server_error(&e),
    };
    let form = typed.unwrap_or_else(|| AudienceForm {
        identifier: record.identifier.clone(),
        scopes: record.scopes.join(" "),
        ttl: record.access_token_ttl.to_string(),
    });
    let (status, error) = match refused {
        Some((status, error)) => (status, Some(error)),
        None => (StatusCode::OK, None),
    };
    let page = AudiencePage {
        frame: Frame::new(services, console, "audiences").with_notice(notice),
        identifier: record.identifier,
        version: record.version,
        scopes: form.scopes,
        ttl: form.ttl,
        error,
    };
    (status, page).into_response()
}

async fn audience(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<AudienceQuery>,
) -> Response {
    let notice = query.done.as_deref().map(|_| "The audience is changed.");
    audience_page(
        &state.services,
        &console,
        &query.identifier,
        None,
        None,
        notice,
    )
    .await
}

async fn update_audience(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let form = AudienceForm::read(&params);
    let text = |name: &'static str| params.text(name);
    let Ok(version) = text("version").parse::<i64>() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The form has no version; reload it.",
        );
    };
    let identifier = form.identifier.clone();
    let ttl = match form.ttl.parse::<i64>() {
        Ok(ttl) => ttl,
        Err(_) => {
            let refused = Some((
                StatusCode::BAD_REQUEST,
                "ttl: must be a whole number of seconds".to_owned(),
            ));
            return audience_page(services, &console, &identifier, Some(form), refused, None).await;
        }
    };
    let changes = AudienceChanges {
        scopes: Some(form.scopes.split_whitespace().map(str::to_owned).collect()),
        ttl: Some(ttl),
    };
    let actor = console.actor();
    let expected = Expected::Version(version);
    let outcome =
        registrations::update_audience(services, &actor, &identifier, changes, expected).await;
    let error = match outcome {
        Ok(_) => {
            let base = console_path(services);
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("identifier", &identifier)
                .append_pair("done", "updated")
                .finish();
            return see_other(&format!("{base}/audiences/edit?{query}"));
        }
        Err(error) => error,
    };
    let Some((status, message)) = change_refusal(&error) else {
        return server_error(&error);
    };
    // A stale form shows the current values; any other refusal keeps what was typed.
    let typed = (!matches!(error, ChangeError::VersionMismatch)).then_some(form);
    let refused = Some((status, message));
    audience_page(services, &console, &identifier, typed, refused, None).await
}

// ---- clients ----

struct ClientRow {
    id: String,
    name: String,
    kind: &'static str,
    grants: String,
    active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/clients.html")]
struct ClientsPage {
    frame: Frame,
    search: String,
    clients: Vec<ClientRow>,
}

/// A grant type in words short enough for a table.
fn short_grant(wire: &str) -> &str {
    wire.rsplit(':').next().unwrap_or(wire)
}

async fn clients(
    State(state): State<AppState>,
    console: Console,
    Query(done): Query<Done>,
) -> Response {
    let services = &state.services;
    let search = done.search.clone().unwrap_or_default();
    let search = search.trim();
    let records = match services.store.list_clients(Some(search), 500, 0).await {
        Ok(records) => records,
        Err(e) => return server_error(&e),
    };
    ClientsPage {
        frame: Frame::new(services, &console, "clients"),
        search: search.to_owned(),
        clients: records
            .into_iter()
            .map(|c| ClientRow {
                grants: c
                    .grant_types
                    .iter()
                    .map(|g| short_grant(g))
                    .collect::<Vec<_>>()
                    .join(", "),
                kind: c.kind.as_str(),
                active: c.active,
                id: c.id,
                name: c.name,
            })
            .collect(),
    }
    .into_response()
}

#[derive(Debug, Default)]
struct ClientForm {
    name: String,
    public: bool,
    grants: Vec<String>,
    audiences: Vec<String>,
    default_audience: String,
    scopes: String,
    redirect_uris: String,
    first_party: bool,
    active: bool,
}

impl ClientForm {
    fn of(client: &ClientRecord) -> Self {
        Self {
            name: client.name.clone(),
            public: client.kind == ClientKind::Public,
            grants: client.grant_types.clone(),
            audiences: client.audiences.clone(),
            default_audience: client.default_audience.clone().unwrap_or_default(),
            scopes: client.scopes.join(" "),
            redirect_uris: client.redirect_uris.join("\n"),
            first_party: client.first_party,
            active: client.active,
        }
    }

    fn posted(params: &Params) -> Self {
        let text = |name: &'static str| params.text(name);
        Self {
            name: text("name"),
            public: params.single("type").ok().flatten() == Some("public"),
            grants: params.all("grant"),
            audiences: params.all("audience"),
            default_audience: text("default_audience"),
            scopes: text("scopes"),
            redirect_uris: text("redirect_uris"),
            first_party: params.single("first_party").ok().flatten().is_some(),
            active: params.single("active").ok().flatten().is_some(),
        }
    }

    fn scope_list(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_owned).collect()
    }

    fn redirect_list(&self) -> Vec<String> {
        self.redirect_uris
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

/// Every grant type, ticked when the form has it.
fn grant_ticks(form: &ClientForm) -> Vec<(&'static str, bool)> {
    crate::grants::GrantType::ALL
        .iter()
        .map(|g| (g.as_wire(), form.grants.iter().any(|t| t == g.as_wire())))
        .collect()
}

/// Every audience, ticked when the form has it.
async fn audience_ticks(
    services: &Services,
    form: &ClientForm,
) -> Result<Vec<(String, bool)>, StoreError> {
    let records = services.store.list_audiences(500, 0).await?;
    Ok(records
        .into_iter()
        .map(|a| {
            let ticked = form.audiences.contains(&a.identifier);
            (a.identifier, ticked)
        })
        .collect())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/client_new.html")]
struct NewClientPage {
    frame: Frame,
    form: ClientForm,
    /// Every grant type, and whether it is ticked.
    grants: Vec<(&'static str, bool)>,
    /// Every audience, and whether it is ticked.
    audiences: Vec<(String, bool)>,
    error: Option<String>,
}

async fn client_form_page(
    services: &Services,
    console: &Console,
    form: ClientForm,
    error: Option<String>,
) -> Response {
    let audiences = match audience_ticks(services, &form).await {
        Ok(audiences) => audiences,
        Err(e) => return server_error(&e),
    };
    let grants = grant_ticks(&form);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = NewClientPage {
        frame: Frame::new(services, console, "clients"),
        form,
        grants,
        audiences,
        error,
    };
    (status, page).into_response()
}

async fn new_client(State(state): State<AppState>, console: Console) -> Response {
    client_form_page(&state.services, &console, ClientForm::default(), None).await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/secret.html")]
struct SecretPage<'a> {
    frame: Frame,
    name: &'a str,
    client_id: &'a str,
    secret: &'a str,
}

async fn create_client(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let form = ClientForm::posted(&params);
    let new = NewClient {
        name: form.name.clone(),
        public: form.public,
        grants: form.grants.clone(),
        audiences: form.audiences.clone(),
        default_audience: Some(form.default_audience.clone()).filter(|d| !d.is_empty()),
        scopes: form.scopes.split_whitespace().map(str::to_owned).collect(),
        redirect_uris: form
            .redirect_uris
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        first_party: form.first_party,
    };
    let created = match registry::create_client(&services.store, services.clock.as_ref(), new).await
    {
        Ok(created) => created,
        Err(RegistryError::Store(e)) => return server_error(&e),
        Err(e) => return client_form_page(services, &console, form, Some(e.to_string())).await,
    };
    let client = &created.client;
    let detail = format!("name {}", client.name);
    if let Err(e) = audit_change(services, &console, "client.created", &client.id, &detail).await {
        return server_error(&e);
    }
    match &created.secret {
        // The secret is shown this once, on this answer; the page is never cached.
        Some(secret) => SecretPage {
            frame: Frame::new(services, &console, "clients")
                .with_notice(Some("The client is registered.")),
            name: &client.name,
            client_id: &client.id,
            secret: secret.expose(),
        }
        .into_response(),
        None => see_other(&format!(
            "{}/clients/{}?done=created",
            console_path(services),
            client.id
        )),
    }
}

struct ClientView {
    id: String,
    name: String,
    kind: &'static str,
    confidential: bool,
    active: bool,
    grant_types: Vec<String>,
    audiences: Vec<String>,
    default_audience: Option<String>,
    scopes: String,
    redirect_uris: Vec<String>,
    first_party: bool,
    created_at: String,
    version: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/client.html")]
struct ClientPage {
    frame: Frame,
    client: ClientView,
    form: ClientForm,
    grants: Vec<(&'static str, bool)>,
    audiences: Vec<(String, bool)>,
    error: Option<String>,
}

/// A client's page; `form` and `error` when a change was refused.
async fn client_page(
    services: &Services,
    console: &Console,
    record: ClientRecord,
    refused: Option<(StatusCode, ClientForm, String)>,
    notice: Option<&str>,
) -> Response {
    let (status, form, error) = match refused {
        Some((status, form, error)) => (status, form, Some(error)),
        None => (StatusCode::OK, ClientForm::of(&record), None),
    };
    let audiences = match audience_ticks(services, &form).await {
        Ok(audiences) => audiences,
        Err(e) => return server_error(&e),
    };
    let page = ClientPage {
        frame: Frame::new(services, console, "clients").with_notice(notice),
        grants: grant_ticks(&form),
        audiences,
        form,
        error,
        client: ClientView {
            kind: record.kind.as_str(),
            confidential: record.kind == ClientKind::Confidential,
            active: record.active,
            scopes: record.scopes.join(" "),
            created_at: format_utc(record.created_at),
            version: record.version,
            id: record.id,
            name: record.name,
            grant_types: record.grant_types,
            audiences: record.audiences,
            default_audience: record.default_audience,
            redirect_uris: record.redirect_uris,
            first_party: record.first_party,
        },
    };
    (status, page).into_response()
}

async fn client(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let services = &state.services;
    let record = match services.store.client(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "There is no such client."),
        Err(e) => return server_error(&e),
    };
    let notice = done.done.as_deref().map(|done| match done {
        "updated" => "The client is changed.",
        _ => "The client is registered.",
    });
    client_page(services, &console, record, None, notice).await
}

/// A refused change in words a person can act on, and the status that goes with it.
pub fn change_refusal(error: &ChangeError) -> Option<(StatusCode, String)> {
    Some(match error {
        ChangeError::Invalid { field, problem } => {
            (StatusCode::BAD_REQUEST, format!("{field}: {problem}"))
        }
        ChangeError::NotFound => (StatusCode::NOT_FOUND, "There is no such record.".into()),
        ChangeError::Conflict(what) => (StatusCode::CONFLICT, what.clone()),
        ChangeError::VersionMismatch => (
            StatusCode::CONFLICT,
            "Someone changed this since the page was shown. Your changes were not saved; \
             the page now shows the current values."
                .into(),
        ),
        ChangeError::Store(_) => return None,
    })
}

async fn update_client(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    if id == CONSOLE_CLIENT_ID {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The console's own client cannot change.",
        );
    }
    let version = params.single("version").ok().flatten().unwrap_or_default();
    let Ok(version) = version.parse::<i64>() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The form has no version; reload it.",
        );
    };
    let form = ClientForm::posted(&params);
    let changes = ClientChanges {
        name: Some(form.name.clone()),
        grant_types: Some(form.grants.clone()),
        audiences: Some(form.audiences.clone()),
        default_audience: Some(Some(form.default_audience.clone()).filter(|d| !d.is_empty())),
        scopes: Some(form.scope_list()),
        redirect_uris: Some(form.redirect_list()),
        first_party: Some(form.first_party),
        active: Some(form.active),
    };
    let actor = console.actor();
    let expected = Expected::Version(version);
    let outcome = registrations::update_client(services, &actor, &id, changes, expected).await;
    let error = match outcome {
        Ok(_) => {
            let base = console_path(services);
            return see_other(&format!("{base}/clients/{id}?done=updated"));
        }
        Err(error) => error,
    };
    let Some((status, message)) = change_refusal(&error) else {
        return server_error(&error);
    };
    let record = match services.store.client(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "There is no such client."),
        Err(e) => return server_error(&e),
    };
    // A stale form shows the current values; any other refusal keeps what was typed.
    let form = if matches!(error, ChangeError::VersionMismatch) {
        ClientForm::of(&record)
    } else {
        form
    };
    client_page(
        services,
        &console,
        record,
        Some((status, form, message)),
        None,
    )
    .await
}

async fn rotate_secret(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    if let Err(stale) = console.form(body) {
        return stale.into_response();
    }
    let record = match services.store.client(&id).await {
        Ok(Some(record)) if record.id != CONSOLE_CLIENT_ID => record,
        Ok(_) => return error_page(StatusCode::NOT_FOUND, "There is no such client."),
        Err(e) => return server_error(&e),
    };
    if record.kind == ClientKind::Public {
        return error_page(StatusCode::BAD_REQUEST, "A public client has no secret.");
    }
    let secret = crate::clients::ClientSecret::generate();
    match services.store.set_client_secret(&id, &secret.hash()).await {
        Ok(true) => {}
        Ok(false) => return error_page(StatusCode::NOT_FOUND, "There is no such client."),
        Err(e) => return server_error(&e),
    }
    if let Err(e) = audit_change(services, &console, "client.secret_rotated", &id, "").await {
        return server_error(&e);
    }
    SecretPage {
        frame: Frame::new(services, &console, "clients").with_notice(Some(
            "The client has a new secret; the old one no longer works.",
        )),
        name: &record.name,
        client_id: &record.id,
        secret: secret.expose(),
    }
    .into_response()
}
