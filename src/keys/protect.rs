//! Protection of private keys at rest: AES-256-GCM under a key derived from the
//! `keys.encryption_secret` setting, bound to the key's id.
//!
//! A stored key starts with a format byte: 0 for a plain PKCS#8 document (no secret
//! configured), 1 for nonce ‖ ciphertext ‖ tag.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;

use super::KeyError;
use crate::crypto::random_bytes;

const PLAIN: u8 = 0;
const SEALED: u8 = 1;
const SALT: &[u8] = b"callsign signing-key encryption v1";

pub struct KeyProtector {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for KeyProtector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyProtector")
            .field("encrypts", &self.key.is_some())
            .finish()
    }
}

impl KeyProtector {
    /// A protector for `secret`; with none, keys are stored plain.
    pub fn new(secret: Option<&str>) -> Self {
        let key = secret.map(|secret| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret.as_bytes());
            let mut bytes = [0u8; 32];
            prk.expand(&[b"aes-256-gcm"], hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(&mut bytes))
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes).expect("a 256-bit AES key");
            LessSafeKey::new(unbound)
        });
        Self { key }
    }

    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Vec<u8> {
        let Some(key) = &self.key else {
            return [&[PLAIN], pkcs8].concat();
        };
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut sealed = pkcs8.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(kid.as_bytes()),
            &mut sealed,
        )
        .expect("AES-GCM sealing of a small buffer succeeds");
        [&[SEALED][..], &nonce_bytes, &sealed].concat()
    }

    /// The PKCS#8 document of a stored key, and whether it was stored plain.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<(Vec<u8>, bool), KeyError> {
        match stored.split_first() {
            Some((&PLAIN, pkcs8)) => Ok((pkcs8.to_vec(), true)),
            Some((&SEALED, rest)) if rest.len() > NONCE_LEN => {
                let key = self.key.as_ref().ok_or(KeyError::SecretMissing)?;
                let (nonce, sealed) = rest.split_at(NONCE_LEN);
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::WrongSecret)?;
                let mut buffer = sealed.to_vec();
                let plain = key
                    .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
                    .map_err(|_| KeyError::WrongSecret)?;
                Ok((plain.to_vec(), false))
            }
            _ => Err(KeyError::Unreadable {
                kid: kid.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let protector = KeyProtector::new(Some("a secret of at least thirty-two bytes!"));
        let sealed = protector.seal("kid-1", b"pkcs8 bytes");
        assert!(!sealed.windows(5).any(|w| w == b"pkcs8"));
        assert_eq!(
            protector.open("kid-1", &sealed).unwrap(),
            (b"pkcs8 bytes".to_vec(), false)
        );
        assert!(matches!(
            protector.open("kid-2", &sealed),
            Err(KeyError::WrongSecret)
        ));
        let other = KeyProtector::new(Some("another secret of thirty-two bytes!!"));
        assert!(matches!(
            other.open("kid-1", &sealed),
            Err(KeyError::WrongSecret)
        ));
        assert!(matches!(
            KeyProtector::new(None).open("kid-1", &sealed),
            Err(KeyError::SecretMissing)
        ));
    }

    #[test]
    fn without_a_secret_keys_are_stored_plain_and_flagged() {
        let protector = KeyProtector::new(None);
        let stored = protector.seal("kid", b"doc");
        assert_eq!(
            protector.open("kid", &stored).unwrap(),
            (b"doc".to_vec(), true)
        );
    }
}
