//! One access line per request (see [`crate::telemetry::access`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::telemetry::{Access, access};

/// What a handler adds to its request's access line, as a response extension: the token
/// endpoint names the client it authenticated and the `jti` of the token it issued, so the
/// line says what was issued to whom.
#[derive(Debug, Clone, Default)]
pub struct AccessNote {
    pub client_id: Option<String>,
    pub jti: Option<String>,
}

/// Times the request and logs its line once the response is ready. The method and the
/// matched route are logged, never the full URI: query strings can carry codes.
///
/// Events logged while the request is handled sit in a `request` span, at debug level: at
/// info level their line and the access line already name the route.
pub(super) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::debug_span!("request", method = %method, route);
    let response = next.run(request).instrument(span).await;
    let note = response.extensions().get::<AccessNote>();
    access(&Access {
        method: method.as_str(),
        route,
        status: response.status().as_u16(),
        latency: started.elapsed(),
        client_id: note.and_then(|n| n.client_id.as_deref()),
        jti: note.and_then(|n| n.jti.as_deref()),
    });
    response
}
