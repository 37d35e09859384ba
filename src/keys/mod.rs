//! Signing keys: one ring per purpose, their lifecycle, and the JWKS document.
//!
//! Phone tokens and access tokens are signed by different keys; the `typ` header is still
//! checked on every token (RFC 8725 §3.11), the keys alone are not the separation.
//!
//! A key is **next** (published, not signing) until its `activate_at`, then **active**
//! (signs), then **retired** (published until every token it signed has expired), then
//! removed. A new key is published for at least the JWKS `max-age` plus the interval at
//! which instances reload keys before it signs anything, so a resource server that caches
//! the JWKS for the advertised `max-age` never meets an unknown `kid`. Transitions are
//! conditional writes in the database, so several instances can run them at once.

mod material;
mod protect;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use jsonwebtoken::DecodingKey;
use serde::Serialize;
use serde_json::json;

pub use material::Algorithm;
pub use protect::KeyProtector;

use crate::clock::Clock;
use crate::crypto::b64;
use crate::store::{AuditEvent, KeyRecord, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    PhoneToken,
    AccessToken,
    IdToken,
}

impl Purpose {
    pub const ALL: [Purpose; 3] = [Purpose::PhoneToken, Purpose::AccessToken, Purpose::IdToken];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PhoneToken => "phone_token",
            Purpose::AccessToken => "access_token",
            Purpose::IdToken => "id_token",
        }
    }

    pub fn parse(value: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate a key pair")]
    Generate,
    #[error("stored key {kid} cannot be read")]
    Unreadable { kid: String },
    #[error("stored key {kid} has an unknown purpose or algorithm")]
    Unsupported { kid: String },
    #[error(
        "the signing keys are encrypted but no secret is configured: set keys.encryption_secret \
         (CALLSIGN_KEYS__ENCRYPTION_SECRET)"
    )]
    SecretMissing,
    #[error(
        "keys.encryption_secret does not decrypt the stored signing keys: it must be the secret \
         they were encrypted with"
    )]
    WrongSecret,
    #[error("no key {0} exists")]
    NoSuchKey(String),
    #[error("no active {0} key")]
    NoActiveKey(&'static str),
    #[error("cannot sign")]
    Sign,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How keys are made and rotated.
#[derive(Debug)]
pub struct KeySettings {
    pub phone_token_algorithm: Algorithm,
    pub access_token_algorithm: Algorithm,
    /// RS256 by default: OpenID Connect requires it of every provider.
    pub id_token_algorithm: Algorithm,
    /// Seconds an active key signs before it is replaced; 0 turns scheduled rotation off.
    pub rotation_period: i64,
    /// The JWKS `Cache-Control: max-age`.
    pub jwks_max_age: i64,
    /// How often each instance reloads the keys from the database.
    pub refresh_interval: i64,
    /// The longest phone-token lifetime.
    pub phone_token_ttl: i64,
    pub id_token_ttl: i64,
    pub protector: KeyProtector,
}

impl KeySettings {
    fn algorithm(&self, purpose: Purpose) -> Algorithm {
        match purpose {
            Purpose::PhoneToken => self.phone_token_algorithm,
            Purpose::AccessToken => self.access_token_algorithm,
            Purpose::IdToken => self.id_token_algorithm,
        }
    }

    /// How long a new key is published before it signs: one JWKS lifetime, plus the time
    /// every instance may take to notice the key and publish it too.
    pub fn publication_lead(&self) -> i64 {
        self.jwks_max_age + self.refresh_interval
    }
}

/// Clock skew allowed for when deciding that a retired key's last token has expired.
const RETIREMENT_SKEW: i64 = 60;

/// The keys of one moment: what signs, what verifies, and the JWKS to publish.
pub struct KeyRing {
    active: HashMap<Purpose, Arc<SigningKey>>,
    by_kid: HashMap<(Purpose, String), Arc<SigningKey>>,
    jwks: Arc<[u8]>,
    states: Vec<(String, String)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.states)
            .finish()
    }
}

/// A key pair the server signs with, plus what verifiers need.
pub struct SigningKey {
    kid: String,
    purpose: Purpose,
    algorithm: Algorithm,
    pair: material::Pair,
    decoding: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("purpose", &self.purpose)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs `claims` as a compact JWS with this key's `alg`, `kid` and the given `typ`.
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let header = json!({"alg": self.algorithm.as_str(), "typ": typ, "kid": self.kid});
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
        let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut jws = format!("{}.{}", b64(&header), b64(&claims));
        let signature = self.pair.sign(jws.as_bytes()).ok_or(KeyError::Sign)?;
        jws.push('.');
        jws.push_str(&b64(&signature));
        Ok(jws)
    }
}

impl KeyRing {
    fn from_records(records: &[KeyRecord], protector: &KeyProtector) -> Result<KeyRing, KeyError> {
        let mut active = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut published = Vec::new();
        let mut states = Vec::new();
        for record in records {
            let unsupported = || KeyError::Unsupported {
                kid: record.kid.clone(),
            };
            let unreadable = || KeyError::Unreadable {
                kid: record.kid.clone(),
            };
            let purpose = Purpose::parse(&record.purpose).ok_or_else(unsupported)?;
            let algorithm = Algorithm::parse(&record.algorithm).ok_or_else(unsupported)?;
            let (pkcs8, _) = protector.open(&record.kid, &record.private_key)?;
            let pair = material::Pair::from_pkcs8(algorithm, &pkcs8).ok_or_else(unreadable)?;
            let (mut jwk, _) = pair.public_members().ok_or_else(unreadable)?;
            let decoding = pair.decoding_key(&jwk).ok_or_else(unreadable)?;
            jwk["kid"] = json!(record.kid);
            jwk["alg"] = json!(algorithm.as_str());
            jwk["use"] = json!("sig");
            published.push(jwk);
            states.push((record.kid.clone(), record.state.clone()));
            let key = Arc::new(SigningKey {
                kid: record.kid.clone(),
                purpose,
                algorithm,
                pair,
                decoding,
            });
            if record.state == "active" {
                active.insert(purpose, key.clone());
            }
            by_kid.insert((purpose, record.kid.clone()), key);
        }
        let jwks = serde_json::to_vec(&json!({ "keys": published })).map_err(|_| KeyError::Sign)?;
        Ok(KeyRing {
            active,
            by_kid,
            jwks: jwks.into(),
            states,
        })
    }

    /// The key that signs new tokens of `purpose`.
    pub fn active(&self, purpose: Purpose) -> &SigningKey {
        // Keys::maintain guarantees an active key for every purpose before a ring is built.
        &self.active[&purpose]
    }

    /// The key of `purpose` named `kid`, if the server publishes one.
    pub fn find(&self, purpose: Purpose, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(&(purpose, kid.to_owned())).map(Arc::as_ref)
    }

    /// The algorithms of the published keys of `purpose`, the signing key's first: during a
    /// switch of algorithm both are in use.
    pub fn algorithms(&self, purpose: Purpose) -> Vec<&'static str> {
        let mut algorithms = vec![self.active(purpose).algorithm.as_str()];
        for ((key_purpose, _), key) in &self.by_kid {
            let name = key.algorithm.as_str();
            if *key_purpose == purpose && !algorithms.contains(&name) {
                algorithms.push(name);
            }
        }
        algorithms
    }

    /// The public JWK Set document: public members only, one entry per published key.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.jwks.clone()
    }
}

/// The keys of a running server: reloaded from the database, rotated on schedule.
pub struct Keys {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: KeySettings,
    current: RwLock<Arc<KeyRing>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What revoking a key did.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub kid: String,
    pub purpose: Purpose,
    pub state: String,
    /// The key that signs now, when the revoked key was the active one.
    pub replacement: Option<String>,
}

impl Keys {
    /// Loads the keys, creating the first ones and running due transitions.
    pub async fn start(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: KeySettings,
        actor: &str,
    ) -> Result<Keys, KeyError> {
        let records = store.signing_keys().await?;
        // Refuse a wrong or missing secret before anything is written.
        let placeholder = KeyRing::from_records(&records, &settings.protector)?;
        let keys = Keys {
            store,
            clock,
            settings,
            current: RwLock::new(Arc::new(placeholder)),
        };
        keys.seal_plain_keys(&records, actor).await?;
        keys.maintain_as(actor).await?;
        let ring = keys.current();
        if let Some(missing) = Purpose::ALL
            .into_iter()
            .find(|p| !ring.active.contains_key(p))
        {
            return Err(KeyError::NoActiveKey(missing.as_str()));
        }
        if !keys.settings.protector.encrypts() {
            tracing::warn!("signing keys are stored unencrypted: set keys.encryption_secret");
        }
        Ok(keys)
    }

    /// The keys now in force.
    pub fn current(&self) -> Arc<KeyRing> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn settings(&self) -> &KeySettings {
        &self.settings
    }

    /// Runs the transitions that are due and reloads the keys.
    pub async fn maintain(&self) -> Result<(), KeyError> {
        self.maintain_as("scheduler").await
    }

    async fn maintain_as(&self, actor: &str) -> Result<(), KeyError> {
        let now = self.clock.now();
        let records = self.store.signing_keys().await?;
        for purpose in Purpose::ALL {
            self.advance(purpose, &records, now, actor).await?;
        }
        self.reload().await
    }

    /// Creates a `next` key for `purpose` that starts signing after the publication lead,
    /// unless one is already waiting; returns it.
    pub async fn rotate(&self, purpose: Purpose, actor: &str) -> Result<KeyRecord, KeyError> {
        let now = self.clock.now();
        let records = self.store.signing_keys().await?;
        let waiting = records
            .iter()
            .find(|r| r.purpose == purpose.as_str() && r.state == "next");
        if waiting.is_none() {
            let activate_at = now + self.settings.publication_lead();
            self.create(purpose, "next", activate_at, actor).await?;
        }
        self.reload().await?;
        // Whatever waits now: ours, or one another process created at the same moment.
        let records = self.store.signing_keys().await?;
        records
            .into_iter()
            .find(|r| r.purpose == purpose.as_str() && r.state == "next")
            .ok_or(KeyError::NoActiveKey(purpose.as_str()))
    }

    /// Removes a key at once. Tokens it signed stop verifying here at once and at resource
    /// servers when their JWKS cache expires. An active key is replaced by the waiting next
    /// key, or by a new one.
    pub async fn revoke(&self, kid: &str, actor: &str) -> Result<Revoked, KeyError> {
        let now = self.clock.now();
        let records = self.store.signing_keys().await?;
        let record = records
            .iter()
            .find(|r| r.kid == kid)
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))?;
        let purpose = Purpose::parse(&record.purpose).ok_or_else(|| KeyError::Unsupported {
            kid: kid.to_owned(),
        })?;
        self.store.delete_key(kid).await?;
        self.audit(
            now,
            actor,
            "key.revoked",
            kid,
            &format!("{} {}", record.purpose, record.state),
        )
        .await?;
        let mut replacement = None;
        if record.state == "active" {
            let waiting = records
                .iter()
                .find(|r| r.purpose == record.purpose && r.state == "next");
            let promoted = match waiting {
                Some(next) if self.store.promote_key(&next.kid, None, now).await? => {
                    self.audit(now, actor, "key.activated", &next.kid, purpose.as_str())
                        .await?;
                    Some(next.kid.clone())
                }
                _ => None,
            };
            replacement = match promoted {
                Some(kid) => Some(kid),
                None => Some(self.create(purpose, "active", now, actor).await?.kid),
            };
        }
        self.reload().await?;
        Ok(Revoked {
            kid: kid.to_owned(),
            purpose,
            state: record.state.clone(),
            replacement,
        })
    }

    /// One purpose's due transitions: first key, scheduled next key, promotion, removal.
    async fn advance(
        &self,
        purpose: Purpose,
        records: &[KeyRecord],
        now: i64,
        actor: &str,
    ) -> Result<(), KeyError> {
        let of_purpose = |state: &str| {
            records
                .iter()
                .find(|r| r.purpose == purpose.as_str() && r.state == state)
        };
        let active = of_purpose("active");
        let mut next = of_purpose("next").cloned();
        let period = self.settings.rotation_period;
        let lead = self.settings.publication_lead();

        if active.is_none() && next.is_none() {
            self.create(purpose, "active", now, actor).await?;
        }
        if let (Some(active), None) = (active, &next) {
            let activated = active.activated_at.unwrap_or(active.created_at);
            if period > 0 && now >= activated + period - lead {
                let activate_at = (activated + period).max(now + lead);
                next = Some(self.create(purpose, "next", activate_at, actor).await?);
            }
        }
        if let Some(next) = next.filter(|n| n.activate_at.is_none_or(|at| at <= now)) {
            let active_kid = active.map(|a| a.kid.as_str());
            if self.store.promote_key(&next.kid, active_kid, now).await? {
                if let Some(retired) = active_kid {
                    self.audit(now, actor, "key.retired", retired, purpose.as_str())
                        .await?;
                }
                self.audit(now, actor, "key.activated", &next.kid, purpose.as_str())
                    .await?;
            }
        }

        // Another instance may sign with the retired key until it next reloads its keys.
        let hold =
            self.retention(purpose).await? + self.settings.refresh_interval + RETIREMENT_SKEW;
        for retired in records
            .iter()
            .filter(|r| r.purpose == purpose.as_str() && r.state == "retired")
        {
            if retired.retired_at.is_some_and(|at| at + hold <= now)
                && self.store.delete_key(&retired.kid).await?
            {
                self.audit(now, actor, "key.removed", &retired.kid, purpose.as_str())
                    .await?;
            }
        }
        Ok(())
    }

    /// The longest lifetime of a token signed for `purpose`: a retired key stays published
    /// that long.
    async fn retention(&self, purpose: Purpose) -> Result<i64, KeyError> {
        Ok(match purpose {
            Purpose::PhoneToken => self.settings.phone_token_ttl,
            Purpose::IdToken => self.settings.id_token_ttl,
            Purpose::AccessToken => self
                .store
                .longest_access_token_ttl()
                .await?
                .unwrap_or(crate::registry::DEFAULT_ACCESS_TOKEN_TTL),
        })
    }

    async fn create(
        &self,
        purpose: Purpose,
        state: &str,
        activate_at: i64,
        actor: &str,
    ) -> Result<KeyRecord, KeyError> {
        let now = self.clock.now();
        let algorithm = self.settings.algorithm(purpose);
        let pkcs8 = material::generate(algorithm).ok_or(KeyError::Generate)?;
        let pair = material::Pair::from_pkcs8(algorithm, &pkcs8).ok_or(KeyError::Generate)?;
        let (_, canonical) = pair.public_members().ok_or(KeyError::Generate)?;
        let kid = material::thumbprint(&canonical);
        let active = state == "active";
        let record = KeyRecord {
            private_key: self.settings.protector.seal(&kid, &pkcs8),
            kid,
            purpose: purpose.as_str().to_owned(),
            algorithm: algorithm.as_str().to_owned(),
            state: state.to_owned(),
            created_at: now,
            activate_at: (!active).then_some(activate_at),
            activated_at: active.then_some(now),
            retired_at: None,
        };
        if self.store.insert_key(&record).await? {
            let detail = format!("{} {} {state}", purpose.as_str(), algorithm.as_str());
            self.audit(now, actor, "key.created", &record.kid, &detail)
                .await?;
        }
        Ok(record)
    }

    /// Encrypts keys stored plain once a secret is configured.
    async fn seal_plain_keys(&self, records: &[KeyRecord], actor: &str) -> Result<(), KeyError> {
        if !self.settings.protector.encrypts() {
            return Ok(());
        }
        for record in records {
            let (pkcs8, plain) = self
                .settings
                .protector
                .open(&record.kid, &record.private_key)?;
            if plain {
                let sealed = self.settings.protector.seal(&record.kid, &pkcs8);
                self.store.reseal_key(&record.kid, &sealed).await?;
                self.audit(self.clock.now(), actor, "key.encrypted", &record.kid, "")
                    .await?;
            }
        }
        Ok(())
    }

    async fn reload(&self) -> Result<(), KeyError> {
        let records = self.store.signing_keys().await?;
        let states: Vec<(String, String)> = records
            .iter()
            .map(|r| (r.kid.clone(), r.state.clone()))
            .collect();
        if self.current().states == states {
            return Ok(());
        }
        let ring = KeyRing::from_records(&records, &self.settings.protector)?;
        for purpose in Purpose::ALL {
            if !ring.active.contains_key(&purpose) {
                // Another instance is between retiring and activating; keep the old ring.
                return Ok(());
            }
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        Ok(())
    }

    async fn audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        kid: &str,
        detail: &str,
    ) -> Result<(), KeyError> {
        tracing::info!(%actor, %action, %kid, %detail, "signing key changed");
        let event = AuditEvent {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: kid.to_owned(),
            detail: detail.to_owned(),
            address: String::new(),
        };
        Ok(self.store.record_audit(&event).await?)
    }
}
