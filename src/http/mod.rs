//! The HTTP surface: one router built from one `router()` per endpoint family.

mod access;
mod authorize;
pub mod error;
pub mod extract;
mod health;
mod introspect;
mod metrics;
mod otp;
mod pages;
mod token;
mod userinfo;
mod well_known;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use well_known::{DiscoveryDocument, StaticFiles};

use crate::services::Services;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub services: Arc<Services>,
    pub static_files: Arc<StaticFiles>,
    pub discovery: Arc<DiscoveryDocument>,
}

/// The whole application router, mounted under the issuer's path.
pub fn router(state: AppState) -> Router {
    let services = &state.services;
    let base = issuer_path(&services.issuer);
    let max_body = services.settings.max_body_bytes;
    let timeout = services.settings.request_timeout;

    // What a browser app on another origin calls itself (RFC 9700 §2.6).
    let cross_origin = Router::new()
        .merge(token::router())
        .merge(otp::router())
        .merge(well_known::router())
        .merge(introspect::router())
        .merge(userinfo::router())
        .layer(cors());
    let api = Router::new()
        .merge(cross_origin)
        .merge(health::router())
        .merge(pages::router())
        .merge(metrics::router())
        .merge(authorize::router())
        .merge(crate::admin::router());
    let app = if base.is_empty() {
        api.merge(well_known::root_router("").layer(cors()))
    } else {
        // RFC 8414 §3: the metadata path is inserted before the issuer's path.
        Router::new()
            .nest(&base, api)
            .merge(well_known::root_router(&base).layer(cors()))
    };
    // One stack, outermost first, added as one layer: each `Router::layer` call wraps every
    // route in a boxed service of its own, cloned and boxed again on each request.
    let edge = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(access::log_request))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(security_headers())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(DefaultBodyLimit::max(max_body));
    app.with_state(state).layer(edge)
}

/// Cross-origin reads for any origin, without cookies: these endpoints take their
/// credentials from the request itself (a client secret, a bearer token), so a site's
/// origin grants it nothing. `/authorize`, the sign-in pages and the admin surfaces get
/// no CORS headers at all.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// Pages are never framed (RFC 9700 §4.16) and load nothing from elsewhere.
fn security_headers() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'",
        ),
    )
}

/// The path part of the issuer, without a trailing slash ("" for a bare host).
fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// JSON with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1), for
/// anything that carries a token or a secret, and for errors.
pub struct NoStoreJson<T>(pub T);

impl<T: Serialize> IntoResponse for NoStoreJson<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.0).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Cache-Control value for public documents.
fn public_max_age(seconds: u32) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={seconds}"))
        .expect("a number makes a valid header value")
}

/// The answer to a method an OAuth endpoint does not take.
async fn method_not_allowed() -> Response {
    let error = error::OAuthError::new(
        error::ErrorCode::InvalidRequest,
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint accepts only POST",
    );
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}
