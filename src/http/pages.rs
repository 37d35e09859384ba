//! Pages people see: the landing page and the authorization endpoint.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::extract::Params;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/authorize", get(authorize))
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

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn error_page(message: &str) -> Response {
    let page = ErrorPage {
        title: "This sign-in link is not valid",
        message,
    };
    (StatusCode::BAD_REQUEST, page).into_response()
}

/// `GET /authorize` (RFC 6749 §4.1.1). The client and its redirect URI are checked first,
/// by exact match; until then nothing redirects (RFC 9700 §4.1). Errors after that go back
/// to the client with `state` and `iss` (RFC 9207).
async fn authorize(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params = Params::from_pairs(pairs);
    let (Ok(client_id), Ok(redirect_uri), Ok(client_state)) = (
        params.single("client_id"),
        params.single("redirect_uri"),
        params.single("state"),
    ) else {
        return error_page("The request repeats a parameter.");
    };
    let Some(client_id) = client_id else {
        return error_page("The request names no client.");
    };
    let client = match state.services.store.client(client_id).await {
        Ok(Some(client)) if client.active => client,
        Ok(_) => return error_page("The request names an unknown client."),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "server error").into_response();
        }
    };
    let registered = &client.redirect_uris;
    let redirect_uri = match redirect_uri {
        Some(uri) if registered.iter().any(|r| r == uri) => uri.to_owned(),
        None if registered.len() == 1 => registered[0].clone(),
        _ => return error_page("The redirect address is not registered for this client."),
    };
    // TODO: the authorization code flow with its login pages is not offered yet; every
    // client is answered as one not registered for it.
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return error_page("The redirect address is not registered for this client.");
    };
    {
        let mut query = target.query_pairs_mut();
        query.append_pair("error", "unauthorized_client");
        query.append_pair(
            "error_description",
            "the client may not use the authorization code flow",
        );
        if let Some(client_state) = client_state {
            query.append_pair("state", client_state);
        }
        query.append_pair("iss", &state.services.issuer);
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, target.to_string())],
    )
        .into_response()
}
