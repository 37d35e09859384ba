//! Registering audiences and clients, with the checks an operator's input needs.
//! Used by the CLI and the admin API; nothing here knows about HTTP.

use crate::clients::ClientSecret;
use crate::clock::Clock;
use crate::crypto::random_id;
use crate::grants::{GrantType, OPENID_SCOPES};
use crate::scope;
use crate::store::{AudienceRecord, ClientKind, ClientRecord, Store, StoreError};

/// Access-token lifetime of an audience registered without `--ttl`.
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 900;
const MIN_TTL: i64 = 60;
const MAX_TTL: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, problem: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field,
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewAudience {
    pub identifier: String,
    pub scopes: Vec<String>,
    pub ttl: Option<i64>,
}

pub async fn create_audience(
    store: &Store,
    clock: &dyn Clock,
    new: NewAudience,
) -> Result<AudienceRecord, RegistryError> {
    validate_audience_identifier(&new.identifier)?;
    let scopes = validate_scopes(&new.scopes)?;
    let ttl = validate_ttl(new.ttl.unwrap_or(DEFAULT_ACCESS_TOKEN_TTL))?;
    let record = AudienceRecord {
        identifier: new.identifier,
        scopes,
        access_token_ttl: ttl,
        created_at: clock.now(),
        version: 1,
    };
    match store.insert_audience(&record).await {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict) => Err(RegistryError::Conflict(format!(
            "audience {}",
            record.identifier
        ))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub public: bool,
    /// Grant types as on the wire, or their short forms; empty means the phone flow.
    pub grants: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    /// Skips the consent page: for the operator's own apps.
    pub first_party: bool,
}

/// A registered client and, for a confidential one, its secret: shown once, never stored.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: ClientRecord,
    pub secret: Option<ClientSecret>,
}

pub async fn create_client(
    store: &Store,
    clock: &dyn Clock,
    new: NewClient,
) -> Result<CreatedClient, RegistryError> {
    let checked = check_client(store, new).await?;
    let secret = (!checked.public).then(ClientSecret::generate);
    let client = ClientRecord {
        id: random_id("cl_"),
        secret_hash: secret.as_ref().map(ClientSecret::hash),
        created_at: clock.now(),
        ..checked.into_record()
    };
    store.insert_client(&client).await?;
    Ok(CreatedClient { client, secret })
}

/// A client's settings after every check, in the form they are stored.
#[derive(Debug, Clone)]
pub struct CheckedClient {
    pub name: String,
    pub public: bool,
    pub grant_types: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub first_party: bool,
}

impl CheckedClient {
    /// An active client record with these settings; id, secret and creation time empty.
    fn into_record(self) -> ClientRecord {
        ClientRecord {
            id: String::new(),
            name: self.name,
            kind: if self.public {
                ClientKind::Public
            } else {
                ClientKind::Confidential
            },
            secret_hash: None,
            grant_types: self.grant_types,
            redirect_uris: self.redirect_uris,
            scopes: self.scopes,
            audiences: self.audiences,
            default_audience: self.default_audience,
            first_party: self.first_party,
            active: true,
            created_at: 0,
            version: 1,
        }
    }
}

/// Checks a client's settings as a whole: its grants, audiences, default audience, scopes
/// and redirect URIs must fit together. Registration and changes share it.
pub async fn check_client(store: &Store, new: NewClient) -> Result<CheckedClient, RegistryError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    let grants = validate_grants(&new.grants, new.public)?;
    let audiences = load_audiences(store, &new.audiences).await?;
    let default_audience = match (new.default_audience, audiences.as_slice()) {
        (Some(default), _) if !new.audiences.contains(&default) => {
            return Err(invalid(
                "default-audience",
                "must be one of the client's audiences",
            ));
        }
        (Some(default), _) => Some(default),
        (None, [only]) => Some(only.identifier.clone()),
        (None, _) => None,
    };
    let scopes = validate_scopes(&new.scopes)?;
    let defined = |s: &String| {
        OPENID_SCOPES.contains(&s.as_str()) || audiences.iter().any(|a| a.scopes.contains(s))
    };
    if let Some(orphan) = scopes.iter().find(|s| !defined(s)) {
        return Err(invalid(
            "scope",
            format!("{orphan} is defined by none of the client's audiences"),
        ));
    }
    let redirect_uris = new
        .redirect_uris
        .iter()
        .map(|uri| validate_redirect_uri(uri))
        .collect::<Result<Vec<_>, _>>()?;

    if grants.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(invalid(
            "redirect-uri",
            "the authorization_code grant needs a redirect URI",
        ));
    }
    Ok(CheckedClient {
        name: name.to_owned(),
        public: new.public,
        grant_types: grants.iter().map(|g| g.as_wire().to_owned()).collect(),
        audiences: audiences.into_iter().map(|a| a.identifier).collect(),
        default_audience,
        scopes,
        redirect_uris,
        first_party: new.first_party,
    })
}

fn validate_grants(grants: &[String], public: bool) -> Result<Vec<GrantType>, RegistryError> {
    if grants.is_empty() {
        return Ok(vec![GrantType::SmsOtp, GrantType::TokenExchange]);
    }
    let mut parsed = Vec::new();
    for grant in grants {
        let grant = GrantType::from_cli(grant).ok_or_else(|| {
            invalid(
                "grant",
                format!("{grant} is not a grant type this server offers"),
            )
        })?;
        if grant == GrantType::ClientCredentials && public {
            return Err(invalid(
                "grant",
                "client_credentials needs a confidential client",
            ));
        }
        if !parsed.contains(&grant) {
            parsed.push(grant);
        }
    }
    Ok(parsed)
}

async fn load_audiences(
    store: &Store,
    identifiers: &[String],
) -> Result<Vec<AudienceRecord>, RegistryError> {
    let mut audiences = Vec::new();
    for identifier in identifiers {
        let audience = store
            .audience(identifier)
            .await?
            .ok_or_else(|| invalid("audience", format!("{identifier} is not registered")))?;
        if !audiences.contains(&audience) {
            audiences.push(audience);
        }
    }
    Ok(audiences)
}

/// An access-token lifetime in the range an audience may have.
pub fn validate_ttl(ttl: i64) -> Result<i64, RegistryError> {
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(invalid(
            "ttl",
            format!("must be between {MIN_TTL} and {MAX_TTL} seconds"),
        ));
    }
    Ok(ttl)
}

/// Scope tokens without repeats, in the order given.
pub fn validate_scopes(scopes: &[String]) -> Result<Vec<String>, RegistryError> {
    let mut valid: Vec<String> = Vec::new();
    for scope in scopes {
        if !scope::is_scope_token(scope) {
            return Err(invalid(
                "scope",
                format!("{scope:?} is not a valid scope token"),
            ));
        }
        if !valid.contains(scope) {
            valid.push(scope.clone());
        }
    }
    Ok(valid)
}

/// An audience is an absolute URI without fragment (usable as an RFC 8707 resource), or a
/// short name of letters, digits and `. _ -`.
pub fn validate_audience_identifier(identifier: &str) -> Result<(), RegistryError> {
    if identifier.is_empty() || identifier.len() > 200 {
        return Err(invalid("identifier", "must be 1 to 200 characters"));
    }
    if identifier.contains(':') {
        let url = url::Url::parse(identifier)
            .map_err(|e| invalid("identifier", format!("is not an absolute URI: {e}")))?;
        if url.fragment().is_some() || identifier.contains(char::is_whitespace) {
            return Err(invalid(
                "identifier",
                "must not have a fragment or white space",
            ));
        }
        return Ok(());
    }
    if !identifier
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(invalid(
            "identifier",
            "a short name may use only letters, digits and . _ -",
        ));
    }
    Ok(())
}

/// Redirect URIs are absolute, without fragment, https or loopback http (RFC 9700 §2.1),
/// or a private-use scheme for native apps (RFC 8252 §7.1).
fn validate_redirect_uri(uri: &str) -> Result<String, RegistryError> {
    let url = url::Url::parse(uri)
        .map_err(|e| invalid("redirect-uri", format!("{uri} is not an absolute URI: {e}")))?;
    if url.fragment().is_some() || uri.contains(char::is_whitespace) {
        return Err(invalid(
            "redirect-uri",
            format!("{uri} must not have a fragment"),
        ));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(
                "redirect-uri",
                format!("{uri}: http only for loopback"),
            ));
        }
        scheme if scheme.contains('.') => {}
        _ => return Err(invalid("redirect-uri", format!("{uri}: use https"))),
    }
    Ok(uri.to_owned())
}

/// The admin API's audience: `<issuer>/admin`.
pub fn admin_audience(issuer: &str) -> String {
    format!("{issuer}/admin")
}

/// Creates the admin audience (unless it exists and `force` is set) and a machine client
/// allowed to call the admin API with every admin scope.
pub async fn bootstrap_admin(
    store: &Store,
    clock: &dyn Clock,
    issuer: &str,
    force: bool,
) -> Result<CreatedClient, RegistryError> {
    let identifier = admin_audience(issuer);
    let exists = store.audience(&identifier).await?.is_some();
    if exists && !force {
        return Err(RegistryError::Conflict(format!(
            "the admin audience {identifier} (bootstrap was run before; --force adds another \
             admin client)"
        )));
    }
    if !exists {
        let audience = NewAudience {
            identifier: identifier.clone(),
            scopes: ADMIN_SCOPES.map(String::from).to_vec(),
            ttl: None,
        };
        create_audience(store, clock, audience).await?;
    }
    let client = NewClient {
        name: "callsign admin".into(),
        grants: vec![GrantType::ClientCredentials.as_wire().into()],
        audiences: vec![identifier],
        scopes: ADMIN_SCOPES.map(String::from).to_vec(),
        ..NewClient::default()
    };
    create_client(store, clock, client).await
}

/// `admin:read` lists and reads; `admin:write` changes.
pub const ADMIN_SCOPES: [&str; 2] = ["admin:read", "admin:write"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_identifiers_are_uris_or_short_names() {
        assert!(validate_audience_identifier("https://orders.api.example.test").is_ok());
        assert!(validate_audience_identifier("orders-api").is_ok());
        assert!(validate_audience_identifier("urn:example:orders").is_ok());
        assert!(validate_audience_identifier("https://x.example.test/#f").is_err());
        assert!(validate_audience_identifier("orders api").is_err());
        assert!(validate_audience_identifier("").is_err());
    }

    #[test]
    fn redirect_uris_must_be_https_loopback_or_private_use() {
        assert!(validate_redirect_uri("https://app.example.test/callback").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:8000/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app:/cb").is_ok());
        assert!(validate_redirect_uri("http://app.example.test/cb").is_err());
        assert!(validate_redirect_uri("https://app.example.test/cb#f").is_err());
        assert!(validate_redirect_uri("/relative").is_err());
    }

    #[test]
    fn short_grant_names_are_accepted_and_public_clients_get_no_machine_grant() {
        let grants = validate_grants(&["sms-otp".into(), "token-exchange".into()], true).unwrap();
        assert_eq!(grants, [GrantType::SmsOtp, GrantType::TokenExchange]);
        assert!(validate_grants(&["client_credentials".into()], true).is_err());
        assert!(validate_grants(&["password".into()], false).is_err());
    }
}
