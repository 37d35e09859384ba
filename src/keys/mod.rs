//! Signing keys: one ring per purpose, loaded from the store, and the JWKS document.
//!
//! Phone tokens and access tokens are signed by different keys, so a key that leaks or is
//! revoked for one purpose never touches the other; the `typ` header is still checked on
//! every token (RFC 8725 §3.11), the keys alone are not the separation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::DecodingKey;
use serde::Serialize;
use serde_json::json;

use crate::clock::Clock;
use crate::crypto::{b64, sha256};
use crate::store::{KeyRecord, Store, StoreError};

/// The only algorithm keys are made for today; a key is bound to exactly one algorithm.
pub const ES256: &str = "ES256";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    PhoneToken,
    AccessToken,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::PhoneToken, Purpose::AccessToken];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PhoneToken => "phone_token",
            Purpose::AccessToken => "access_token",
        }
    }

    fn parse(value: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate a key pair")]
    Generate,
    #[error("stored key {kid} cannot be read")]
    Unreadable { kid: String },
    #[error("stored key {kid} has unknown purpose or algorithm")]
    Unsupported { kid: String },
    #[error("no active {0} key after creation")]
    NoActiveKey(&'static str),
    #[error("cannot sign")]
    Sign,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key pair the server signs with, plus what verifiers need.
pub struct SigningKey {
    kid: String,
    purpose: Purpose,
    pair: EcdsaKeyPair,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("purpose", &self.purpose)
            .finish()
    }
}

impl SigningKey {
    fn from_pkcs8(kid: &str, purpose: Purpose, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let unreadable = || KeyError::Unreadable {
            kid: kid.to_owned(),
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| unreadable())?;
        let (x, y) = ec_coordinates(&pair).ok_or_else(unreadable)?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|_| unreadable())?;
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": ES256, "use": "sig",
        });
        Ok(Self {
            kid: kid.to_owned(),
            purpose,
            pair,
            decoding,
            jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        jsonwebtoken::Algorithm::ES256
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs `claims` as a compact JWS with this key's `kid` and the given `typ`.
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let header = json!({"alg": ES256, "typ": typ, "kid": self.kid});
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
        let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut jws = format!("{}.{}", b64(&header), b64(&claims));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), jws.as_bytes())
            .map_err(|_| KeyError::Sign)?;
        jws.push('.');
        jws.push_str(&b64(signature.as_ref()));
        Ok(jws)
    }
}

/// The keys the server holds, indexed for signing (active key per purpose) and for
/// verification (kid per purpose).
#[derive(Debug)]
pub struct KeyRing {
    active: HashMap<Purpose, Arc<SigningKey>>,
    by_kid: HashMap<(Purpose, String), Arc<SigningKey>>,
    jwks: serde_json::Value,
}

impl KeyRing {
    /// Loads the keys from the store, generating an active key for each purpose that has
    /// none (the first start).
    pub async fn load_or_create(store: &Store, clock: &dyn Clock) -> Result<KeyRing, KeyError> {
        let mut records = store.signing_keys().await?;
        let mut created = false;
        for purpose in Purpose::ALL {
            let has_active = records
                .iter()
                .any(|r| r.purpose == purpose.as_str() && r.state == "active");
            if !has_active {
                let record = generate(purpose, clock.now())?;
                if store.insert_active_key(&record).await? {
                    tracing::info!(kid = %record.kid, purpose = purpose.as_str(), "signing key created");
                }
                created = true;
            }
        }
        if created {
            records = store.signing_keys().await?;
        }
        KeyRing::from_records(&records)
    }

    fn from_records(records: &[KeyRecord]) -> Result<KeyRing, KeyError> {
        let mut active = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut published = Vec::new();
        for record in records {
            let unsupported = || KeyError::Unsupported {
                kid: record.kid.clone(),
            };
            let purpose = Purpose::parse(&record.purpose).ok_or_else(unsupported)?;
            if record.algorithm != ES256 {
                return Err(unsupported());
            }
            let key = Arc::new(SigningKey::from_pkcs8(
                &record.kid,
                purpose,
                &record.private_key,
            )?);
            published.push(key.jwk.clone());
            if record.state == "active" {
                active.insert(purpose, key.clone());
            }
            by_kid.insert((purpose, record.kid.clone()), key);
        }
        for purpose in Purpose::ALL {
            if !active.contains_key(&purpose) {
                return Err(KeyError::NoActiveKey(purpose.as_str()));
            }
        }
        Ok(KeyRing {
            active,
            by_kid,
            jwks: json!({ "keys": published }),
        })
    }

    /// The key that signs new tokens of `purpose`.
    pub fn active(&self, purpose: Purpose) -> &SigningKey {
        // from_records guarantees an active key for every purpose.
        &self.active[&purpose]
    }

    /// The key of `purpose` named `kid`, if the server holds one.
    pub fn find(&self, purpose: Purpose, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(&(purpose, kid.to_owned())).map(Arc::as_ref)
    }

    /// The public JWK Set: public members only, one entry per key.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

/// A fresh ES256 key for `purpose`, named by its RFC 7638 thumbprint.
fn generate(purpose: Purpose, now: i64) -> Result<KeyRecord, KeyError> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Generate)?;
    let (x, y) = ec_coordinates(&pair).ok_or(KeyError::Generate)?;
    // RFC 7638 §3.2: the required members in lexicographic order, no white space.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Ok(KeyRecord {
        kid: b64(&sha256(canonical.as_bytes())),
        purpose: purpose.as_str().to_owned(),
        algorithm: ES256.to_owned(),
        state: "active".to_owned(),
        // TODO: private keys are stored unencrypted; encryption at rest with a
        // key-encryption secret from the configuration comes with key rotation.
        private_key: pkcs8.as_ref().to_vec(),
        created_at: now,
    })
}

/// The base64url x and y coordinates of an uncompressed P-256 public key.
fn ec_coordinates(pair: &EcdsaKeyPair) -> Option<(String, String)> {
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 0x04 {
        return None;
    }
    Some((b64(&point[1..33]), b64(&point[33..65])))
}
