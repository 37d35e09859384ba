//! One-time codes: generation and the keyed hash under which a challenge stores its code.

use std::fmt;

use crate::crypto::{constant_time_eq, hmac_sha256, random_digits};

/// A one-time code. `Debug` never shows it and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// A fresh code of `length` decimal digits from the operating system's CSPRNG.
    pub fn generate(length: u32) -> Self {
        Self(random_digits(length))
    }

    pub fn new(code: String) -> Self {
        Self(code)
    }

    /// The code itself; only for the SMS text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode([redacted])")
    }
}

/// Hashes codes with HMAC-SHA256 under a server secret, bound to the challenge id, so a
/// stolen database row is useless without the secret and a hash never matches another
/// challenge.
#[derive(Clone)]
pub struct OtpHasher {
    key: Vec<u8>,
}

impl OtpHasher {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    pub fn hash(&self, challenge_id: &str, code: &str) -> Vec<u8> {
        hmac_sha256(&self.key, &[challenge_id.as_bytes(), code.as_bytes()])
    }

    /// Whether `code` is the one hashed into `stored`, in constant time.
    pub fn matches(&self, challenge_id: &str, code: &str, stored: &[u8]) -> bool {
        constant_time_eq(&self.hash(challenge_id, code), stored)
    }
}

impl fmt::Debug for OtpHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpHasher([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_only_its_code_and_challenge() {
        let hasher = OtpHasher::new(vec![7; 32]);
        let stored = hasher.hash("otp_a", "123456");
        assert!(hasher.matches("otp_a", "123456", &stored));
        assert!(!hasher.matches("otp_a", "123457", &stored));
        assert!(!hasher.matches("otp_b", "123456", &stored));
        assert!(!OtpHasher::new(vec![8; 32]).matches("otp_a", "123456", &stored));
    }

    #[test]
    fn debug_never_shows_the_code() {
        assert!(!format!("{:?}", OtpCode::new("424242".into())).contains("424242"));
    }
}
