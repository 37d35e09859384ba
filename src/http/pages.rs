//! The landing page.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    issuer: &'a str,
}

async fn index(State(state): State<AppState>) -> Response {
    IndexPage {
        issuer: &state.services.issuer,
    }
    .into_response()
}
