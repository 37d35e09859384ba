//! Request parameters and client credentials, read strictly.
//!
//! RFC 6749 §3.1: parameters without a value count as omitted, and no parameter may be
//! sent twice; the repeatable ones (`audience`, `resource`) are read as lists. Framework
//! rejections never reach the client: every failure is an [`OAuthError`].

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{ErrorCode, OAuthError};
use crate::clients::{AuthMethod, ClientCredentials, ClientSecret};

/// The socket peer of the request, when the server was started with connection info
/// (`into_make_service_with_connect_info`); `None` when driven without a socket.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Peer(peer.map(|ConnectInfo(address)| *address)))
    }
}

/// Parameters of an `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Parameters of a form body or of a flat JSON object of strings.
#[derive(Debug)]
pub struct FormOrJson(pub Params);

impl Params {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// A form field's value, trimmed; empty when it is absent or repeated, for pages that
    /// show the form again with what was typed rather than fail.
    pub fn text(&self, name: &'static str) -> String {
        self.single(name)
            .ok()
            .flatten()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The value of a parameter that may appear once; empty counts as absent.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.pairs.iter().filter(|(key, _)| key == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        Ok(first
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty()))
    }

    pub fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.single(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is missing")))
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_media_type(request.headers(), "application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = read_body(request, state).await?;
        Ok(parse_form(&body))
    }
}

impl<S: Send + Sync> FromRequest<S> for FormOrJson {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if has_media_type(request.headers(), "application/x-www-form-urlencoded") {
            let body = read_body(request, state).await?;
            return Ok(FormOrJson(parse_form(&body)));
        }
        if !has_media_type(request.headers(), "application/json") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded or application/json",
            ));
        }
        let body = read_body(request, state).await?;
        let JsonMembers(members) = serde_json::from_slice(&body)
            .map_err(|_| OAuthError::invalid_request("the body is not a JSON object"))?;
        let mut pairs = Vec::with_capacity(members.len());
        // Members are kept in order, repeats included, so a repeated one is refused like a
        // repeated form parameter.
        for (key, value) in members {
            match value {
                serde_json::Value::String(value) => pairs.push((key, value)),
                serde_json::Value::Null => {}
                _ => {
                    return Err(OAuthError::invalid_request(
                        "every JSON member must be a string",
                    ));
                }
            }
        }
        Ok(FormOrJson(Params::from_pairs(pairs)))
    }
}

/// The members of a JSON object in order, repeats kept (a map type would keep the last).
struct JsonMembers(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonMembers;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonMembers, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(JsonMembers(members))
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// Reads an `application/x-www-form-urlencoded` body; never fails, since every byte
/// string decodes to some list of pairs.
pub fn parse_form(body: &[u8]) -> Params {
    Params::from_pairs(form_urlencoded::parse(body).into_owned().collect())
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, OAuthError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                OAuthError::new(ErrorCode::InvalidRequest, status, "the body is too large")
            } else {
                OAuthError::invalid_request("the body could not be read")
            }
        })
}

fn has_media_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(expected))
}

/// RFC 6749 §2.3.1: client credentials never travel in the query string.
pub fn refuse_query_credentials(uri: &Uri) -> Result<(), OAuthError> {
    let query = uri.query().unwrap_or_default();
    if form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == "client_secret") {
        return Err(OAuthError::invalid_request(
            "client credentials must not be in the query",
        ));
    }
    Ok(())
}

/// Reads the client's credentials from HTTP Basic or the body, refusing a request that
/// uses more than one method (RFC 6749 §2.3).
pub fn client_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientCredentials, OAuthError> {
    let body_id = params.single("client_id")?;
    let body_secret = params.single("client_secret")?;
    if let Some((id, secret)) = basic_credentials(headers)? {
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        if body_id.is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok(ClientCredentials {
            client_id: id,
            secret: Some(ClientSecret::new(secret)),
            method: AuthMethod::Basic,
        });
    }
    let client_id = body_id.ok_or_else(|| OAuthError::invalid_client(AuthMethod::None))?;
    let method = if body_secret.is_some() {
        AuthMethod::Post
    } else {
        AuthMethod::None
    };
    Ok(ClientCredentials {
        client_id: client_id.to_owned(),
        secret: body_secret.map(|s| ClientSecret::new(s.to_owned())),
        method,
    })
}

/// The id and secret of an `Authorization: Basic` header, each form-urlencoded
/// (RFC 6749 §2.3.1); `None` when the request has no Basic credentials.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client(AuthMethod::Basic);
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let (id, secret) = (form_decode(id), form_decode(secret));
    if id.is_empty() || secret.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

fn form_decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, decoded)| decoded.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn params(body: &str) -> Params {
        parse_form(body.as_bytes())
    }

    #[test]
    fn repeated_single_parameters_are_refused_and_empty_ones_are_absent() {
        let p = params("a=1&a=2&b=&c=3&aud=x&aud=y&aud=");
        assert_eq!(p.single("a").unwrap_err().code, ErrorCode::InvalidRequest);
        assert_eq!(p.single("b").unwrap(), None);
        assert_eq!(p.required("c").unwrap(), "3");
        assert!(p.required("b").is_err());
        assert_eq!(p.all("aud"), ["x", "y"]);
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let credentials = client_credentials(&headers, &params("")).unwrap();
        assert_eq!(credentials.client_id, "my client");
        assert_eq!(credentials.secret.unwrap().expose(), "s:cret x");
        assert_eq!(credentials.method, AuthMethod::Basic);
    }

    #[test]
    fn two_authentication_methods_are_refused() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("c:s");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let error = client_credentials(&headers, &params("client_secret=s")).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn malformed_basic_credentials_are_invalid_client() {
        for value in ["Basic !!!", "Basic", "Basic Yzo=", "Basic Og=="] {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            let error = client_credentials(&headers, &params("")).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidClient, "{value}");
        }
    }
}
