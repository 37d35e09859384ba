//! Key material per algorithm: generation, signing, and the public JWK.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use jsonwebtoken::DecodingKey;
use serde_json::json;

use crate::crypto::{b64, sha256};

/// The signing algorithms keys can be made for; a key is bound to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    EdDsa,
    Rs256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256];

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Rs256 => "RS256",
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// A parsed private key, kept parsed so signing does no decoding.
pub(super) enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

/// A new private key in PKCS#8 form (v1 for Ed25519, which JWK export needs).
pub(super) fn generate(algorithm: Algorithm) -> Option<Vec<u8>> {
    let rng = SystemRandom::new();
    match algorithm {
        Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .ok()
            .map(|d| d.as_ref().to_vec()),
        Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8v1(&rng)
            .ok()
            .map(|d| d.as_ref().to_vec()),
        Algorithm::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).ok()?;
            let der = pair.as_der().ok()?;
            Some(der.as_ref().to_vec())
        }
    }
}

impl Pair {
    pub(super) fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> Option<Pair> {
        match algorithm {
            Algorithm::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .ok()
                .map(Pair::Ec),
            Algorithm::EdDsa => Ed25519KeyPair::from_pkcs8(pkcs8).ok().map(Pair::Ed),
            Algorithm::Rs256 => aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8)
                .ok()
                .filter(|pair| pair.public_modulus_len() >= 256)
                .map(Pair::Rsa),
        }
    }

    pub(super) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let rng = SystemRandom::new();
        match self {
            Pair::Ec(pair) => pair.sign(&rng, message).ok().map(|s| s.as_ref().to_vec()),
            Pair::Ed(pair) => Some(pair.sign(message).as_ref().to_vec()),
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .ok()?;
                Some(signature)
            }
        }
    }

    /// The public members of the JWK and the RFC 7638 thumbprint input, which lists the
    /// required members in lexicographic order without white space.
    pub(super) fn public_members(&self) -> Option<(serde_json::Value, String)> {
        match self {
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                if point.len() != 65 || point[0] != 0x04 {
                    return None;
                }
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                Some((
                    json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                    canonical,
                ))
            }
            Pair::Ed(pair) => {
                let x = b64(pair.public_key().as_ref());
                let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                Some((json!({"kty": "OKP", "crv": "Ed25519", "x": x}), canonical))
            }
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                let n = b64(public.modulus().big_endian_without_leading_zero());
                let e = b64(public.exponent().big_endian_without_leading_zero());
                let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                Some((json!({"kty": "RSA", "n": n, "e": e}), canonical))
            }
        }
    }

    /// The verifying key, built from the same public members the JWKS publishes.
    pub(super) fn decoding_key(&self, members: &serde_json::Value) -> Option<DecodingKey> {
        let field = |name: &str| members[name].as_str();
        match self {
            Pair::Ec(_) => DecodingKey::from_ec_components(field("x")?, field("y")?).ok(),
            Pair::Ed(_) => DecodingKey::from_ed_components(field("x")?).ok(),
            Pair::Rsa(_) => DecodingKey::from_rsa_components(field("n")?, field("e")?).ok(),
        }
    }
}

/// The key id: the RFC 7638 thumbprint of the public key.
pub(super) fn thumbprint(canonical: &str) -> String {
    b64(&sha256(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_signs_and_exports_a_public_jwk() {
        for algorithm in Algorithm::ALL {
            let pkcs8 = generate(algorithm).expect("a key");
            let pair = Pair::from_pkcs8(algorithm, &pkcs8).expect("the key parses");
            let (members, canonical) = pair.public_members().unwrap();
            assert!(members.get("d").is_none());
            let key = pair.decoding_key(&members).expect("a verifying key");
            let message = b"header.payload";
            let signature = pair.sign(message).unwrap();
            let encoded = b64(&signature);
            let verified = jsonwebtoken::crypto::verify(&encoded, message, &key, algorithm.jwt());
            assert!(verified.unwrap(), "{algorithm:?}");
            assert_eq!(thumbprint(&canonical).len(), 43);
        }
    }

    #[test]
    fn rsa_keys_have_at_least_2048_bits() {
        let pkcs8 = generate(Algorithm::Rs256).unwrap();
        let Some(Pair::Rsa(pair)) = Pair::from_pkcs8(Algorithm::Rs256, &pkcs8) else {
            panic!("an RSA key");
        };
        assert!(pair.public_modulus_len() * 8 >= 2048);
    }
}
