//! Client authentication (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, and
//! `none` for public clients.
//!
//! Client secrets are generated with 256 bits of entropy, so a fast hash (SHA-256) is
//! enough to store them: no one can search that space, and a slow hash would only slow
//! every token request.

use std::fmt;

use crate::crypto::{b64, constant_time_eq, random_bytes, sha256};
use crate::store::{ClientKind, ClientRecord, Store, StoreError};

/// A client secret as sent by a client or shown once at creation.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// A fresh secret of 256 random bits.
    pub fn generate() -> Self {
        Self(b64(&random_bytes::<32>()))
    }

    pub fn hash(&self) -> Vec<u8> {
        sha256(self.0.as_bytes())
    }

    /// The secret itself; only for showing it once to the operator.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// How the client presented itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the body (`client_secret_post`).
    Post,
    /// `client_id` alone (`none`, public clients).
    None,
}

/// What a request says about its client.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<ClientSecret>,
    pub method: AuthMethod,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("no client is registered with this id")]
    UnknownClient,
    #[error("the client is disabled")]
    Disabled,
    #[error("the confidential client sent no secret")]
    SecretMissing,
    #[error("the public client sent a secret")]
    SecretNotExpected,
    #[error("the client secret is wrong")]
    WrongSecret,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finds the client and checks its secret in constant time.
pub async fn authenticate(
    store: &Store,
    credentials: &ClientCredentials,
) -> Result<ClientRecord, ClientAuthError> {
    let client = store
        .client(&credentials.client_id)
        .await?
        .ok_or(ClientAuthError::UnknownClient)?;
    match (client.kind, &credentials.secret, &client.secret_hash) {
        (ClientKind::Public, None, _) => {}
        (ClientKind::Public, Some(_), _) => return Err(ClientAuthError::SecretNotExpected),
        (ClientKind::Confidential, None, _) => return Err(ClientAuthError::SecretMissing),
        (ClientKind::Confidential, Some(secret), Some(stored)) => {
            if !constant_time_eq(&secret.hash(), stored) {
                return Err(ClientAuthError::WrongSecret);
            }
        }
        (ClientKind::Confidential, Some(_), None) => return Err(ClientAuthError::WrongSecret),
    }
    if !client.active {
        return Err(ClientAuthError::Disabled);
    }
    Ok(client)
}

/// Whether a requested redirect URI matches a registered one: byte for byte, except that a
/// loopback IP literal over http may name any port (RFC 8252 §7.3), because a native app
/// listens on whatever port the system gives it. `localhost` gets no such leeway: the RFC
/// advises against it, since the name need not resolve to the loopback interface.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    ["http://127.0.0.1", "http://[::1]"].iter().any(|origin| {
        match (
            without_port(registered, origin),
            without_port(requested, origin),
        ) {
            (Some(registered), Some(requested)) => registered == requested,
            _ => false,
        }
    })
}

/// What follows `origin` and its optional port, when that rest starts a path or a query.
fn without_port<'a>(uri: &'a str, origin: &str) -> Option<&'a str> {
    let rest = uri.strip_prefix(origin)?;
    let rest = match rest.strip_prefix(':') {
        Some(port_and_rest) => {
            let end = port_and_rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(port_and_rest.len());
            let port = &port_and_rest[..end];
            // A port of 1 to 65535, written without leading zeros.
            if port.starts_with('0') || !matches!(port.parse::<u16>(), Ok(1..)) {
                return None;
            }
            &port_and_rest[end..]
        }
        None => rest,
    };
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_carry_256_bits_and_hide_in_debug() {
        let secret = ClientSecret::generate();
        assert_eq!(secret.expose().len(), 43);
        assert!(!format!("{secret:?}").contains(secret.expose()));
        assert_ne!(secret.expose(), ClientSecret::generate().expose());
    }

    #[test]
    fn only_a_loopback_ip_literal_may_change_its_port() {
        let native = "http://127.0.0.1/callback";
        assert!(redirect_uri_matches(
            native,
            "http://127.0.0.1:49152/callback"
        ));
        assert!(redirect_uri_matches(native, native));
        assert!(redirect_uri_matches(
            "http://127.0.0.1:8000/cb?x=1",
            "http://127.0.0.1:9/cb?x=1"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]/cb",
            "http://[::1]:5000/cb"
        ));
        for other in [
            "http://127.0.0.1:49152/callback/",
            "http://127.0.0.1:49152/callbackx",
            "http://127.0.0.1:49152/Callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:65536/callback",
            "http://127.0.0.1:080/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:80@evil.example/callback",
            "http://127.0.0.1.evil.example/callback",
            "http://[::1]:49152/callback",
            "http://localhost:49152/callback",
            "https://127.0.0.1:49152/callback",
        ] {
            assert!(!redirect_uri_matches(native, other), "{other}");
        }
        assert!(!redirect_uri_matches(
            "http://localhost/cb",
            "http://localhost:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            "https://app.example.test/cb",
            "https://app.example.test:8443/cb"
        ));
    }
}
