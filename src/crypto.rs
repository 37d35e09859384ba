//! Small cryptographic helpers over aws-lc-rs, the one crypto backend of the crate.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// Fills a fixed-size array from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system random generator is available");
    bytes
}

/// A random identifier with 128 bits of entropy, base64url without padding, behind a prefix.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", b64(&random_bytes::<16>()))
}

/// A uniformly random decimal string of `digits` digits (rejection sampling, no modulo bias).
pub fn random_digits(digits: u32) -> String {
    let bound = 10u64.pow(digits);
    // The largest multiple of `bound` that fits in a u64; draws above it are discarded.
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let draw = u64::from_le_bytes(random_bytes::<8>());
        if draw < zone {
            return format!("{:0width$}", draw % bound, width = digits as usize);
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    for part in parts {
        // Length-prefix each part so that ("ab", "c") and ("a", "bc") differ.
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    context.sign().as_ref().to_vec()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_digits_have_the_requested_length_and_only_digits() {
        for digits in [6, 8, 10] {
            let code = random_digits(digits);
            assert_eq!(code.len(), digits as usize);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn hmac_parts_are_length_prefixed() {
        assert_ne!(
            hmac_sha256(b"k", &[b"ab", b"c"]),
            hmac_sha256(b"k", &[b"a", b"bc"])
        );
    }

    #[test]
    fn random_ids_differ_and_carry_their_prefix() {
        let (a, b) = (random_id("usr_"), random_id("usr_"));
        assert_ne!(a, b);
        assert!(a.starts_with("usr_") && a.len() == 4 + 22);
    }
}
