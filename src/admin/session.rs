//! The console's sessions: a random cookie value whose SHA-256 hash names a row in the
//! database, an idle timeout and an absolute lifetime, a CSRF token per session, and the
//! refusal of cross-site form posts.

use std::net::SocketAddr;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Actor;
use super::console::{error_page, see_other};
use crate::crypto::{b64, constant_time_eq, random_bytes, sha256};
use crate::http::AppState;
use crate::http::extract::{Params, parse_form};
use crate::limits::source_address;
use crate::services::Services;
use crate::store::{ADMIN_ROLE, ConsoleSession, NewConsoleSession};

/// A fresh cookie value and its stored hash.
pub struct SessionId {
    pub value: String,
    pub hash: Vec<u8>,
}

impl SessionId {
    pub fn generate() -> Self {
        let value = b64(&random_bytes::<32>());
        let hash = sha256(value.as_bytes());
        Self { value, hash }
    }
}

/// A new CSRF token.
pub fn new_csrf() -> String {
    b64(&random_bytes::<24>())
}

/// The console's path under the issuer: `/admin`, or `/base/admin` for an issuer with a path.
pub fn console_path(services: &Services) -> String {
    let path = url::Url::parse(&services.issuer)
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    format!("{path}/admin")
}

/// `Secure` is left off only for a development issuer on plain http at a loopback name.
fn secure(services: &Services) -> bool {
    let Ok(url) = url::Url::parse(&services.issuer) else {
        return true;
    };
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost"));
    !(url.scheme() == "http" && loopback)
}

fn cookie_name(services: &Services) -> &'static str {
    if secure(services) {
        "__Secure-callsign_console"
    } else {
        "callsign_console"
    }
}

/// Sets the session cookie; an empty value with `Max-Age=0` removes it.
pub fn set_cookie(services: &Services, response: &mut Response, value: &str, max_age: i64) {
    let secure = if secure(services) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path={}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        cookie_name(services),
        console_path(services),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The SHA-256 hash of the session cookie this request carries.
pub fn cookie_hash(services: &Services, headers: &HeaderMap) -> Option<Vec<u8>> {
    let name = cookie_name(services);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| sha256(value.as_bytes()))
}

/// The live session of this request, marked as used now.
pub async fn current(
    services: &Services,
    headers: &HeaderMap,
) -> Result<Option<(Vec<u8>, ConsoleSession)>, Response> {
    let Some(hash) = cookie_hash(services, headers) else {
        return Ok(None);
    };
    let now = services.clock.now();
    let idle = services.settings.console.idle_timeout;
    match services.store.use_console_session(&hash, now, idle).await {
        Ok(session) => Ok(session.map(|session| (hash, session))),
        Err(e) => Err(server_error(&e)),
    }
}

/// Stores a new session and sets its cookie on `response`.
pub async fn open(
    services: &Services,
    response: &mut Response,
    user_id: Option<&str>,
    csrf: &str,
    lifetime: i64,
) -> Result<(), Response> {
    let id = SessionId::generate();
    let now = services.clock.now();
    let session = NewConsoleSession {
        id_hash: &id.hash,
        csrf,
        phone: None,
        user_id,
        now,
        expires_at: now + lifetime,
    };
    let idle = services.settings.console.idle_timeout;
    if let Err(e) = services.store.insert_console_session(&session, idle).await {
        return Err(server_error(&e));
    }
    set_cookie(services, response, &id.value, lifetime);
    Ok(())
}

pub fn server_error(error: &dyn std::error::Error) -> Response {
    tracing::error!(error = %error, "console request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. Try again.",
    )
}

/// Refuses a form posted from another site: browsers name the origin of a post in
/// `Origin` and, for fetches, in `Sec-Fetch-Site`. A request with neither (an old browser
/// or a script) still needs the session cookie, which SameSite=Strict keeps from other
/// sites, and the CSRF token.
pub fn same_site(services: &Services, headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let expected = url::Url::parse(&services.issuer)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    origin.to_str().is_ok_and(|origin| origin == expected)
}

/// A signed-in admin: a live session whose user holds the admin role.
pub struct Console {
    pub user_id: String,
    pub csrf: String,
    pub id_hash: Vec<u8>,
    /// Where the request came from, through trusted proxies, for the audit trail.
    pub address: String,
}

impl Console {
    /// The acting party the audit trail names: the signed-in user.
    pub fn actor(&self) -> Actor {
        Actor {
            name: format!("user:{}", self.user_id),
            address: self.address.clone(),
        }
    }

    /// The fields of a posted form, once its CSRF token matched the session's.
    pub fn form(
        &self,
        body: Result<axum::body::Bytes, BytesRejection>,
    ) -> Result<Params, StaleForm> {
        // A body too large or unreadable is a stale form as far as a person can tell.
        let body = body.map_err(|_| StaleForm)?;
        let params = parse_form(&body);
        let csrf = params.single("csrf").ok().flatten().unwrap_or_default();
        if !constant_time_eq(csrf.as_bytes(), self.csrf.as_bytes()) {
            return Err(StaleForm);
        }
        Ok(params)
    }
}

/// A form without the session's CSRF token.
#[derive(Debug)]
pub struct StaleForm;

impl IntoResponse for StaleForm {
    fn into_response(self) -> Response {
        error_page(
            StatusCode::FORBIDDEN,
            "This form has expired. Go back, reload the page and try again.",
        )
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let services = &state.services;
        if parts.method != Method::GET
            && parts.method != Method::HEAD
            && !same_site(services, &parts.headers)
        {
            return Err(cross_site());
        }
        let login = || see_other(&format!("{}/login", console_path(services)));
        let Some((id_hash, session)) = current(services, &parts.headers).await? else {
            return Err(login());
        };
        let Some(user_id) = session.user_id else {
            return Err(login());
        };
        // Checked on every request, so that taking the role back takes effect at once.
        match services.store.has_role(&user_id, ADMIN_ROLE).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = services.store.delete_console_session(&id_hash).await;
                return Err(login());
            }
            Err(e) => return Err(server_error(&e)),
        }
        Ok(Console {
            user_id,
            csrf: session.csrf,
            id_hash,
            address: caller_address(services, parts),
        })
    }
}

/// The caller's address, through trusted proxies as for the send limits.
pub fn caller_address(services: &Services, parts: &Parts) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let trusted = &services.settings.limits.trusted_proxies;
    source_address(peer, &forwarded, trusted).to_string()
}

pub fn cross_site() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form was sent from another site. Open the console directly and try again.",
    )
    .into_response()
}
