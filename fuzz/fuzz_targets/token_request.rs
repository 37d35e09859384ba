//! Fuzzes the parsing of a token request: the form body, the `Authorization` header, the
//! grant type and every parameter a grant reads, down to the phone number and scope
//! parsers. Any input must end in a value or an error, never a panic.
//!
//! The input is split at its first NUL byte: before it the `Authorization` header value,
//! after it the body.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use callsign::grants::GrantType;
use callsign::http::extract::{client_credentials, parse_form};
use callsign::phone::Phone;
use libfuzzer_sys::fuzz_target;

const SINGLE: [&str; 10] = [
    "grant_type",
    "phone_number",
    "otp",
    "scope",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "ui_locales",
];

fuzz_target!(|data: &[u8]| {
    let (authorization, body) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert(header::AUTHORIZATION, value);
    }
    let params = parse_form(body);
    let _ = client_credentials(&headers, &params);
    for name in SINGLE {
        let _ = params.single(name);
    }
    let _ = params.all("audience");
    let _ = params.all("resource");
    if let Ok(Some(grant_type)) = params.single("grant_type") {
        let _ = GrantType::from_wire(grant_type);
    }
    if let Ok(Some(scope)) = params.single("scope") {
        let _ = callsign::scope::parse(scope);
    }
    if let Ok(Some(number)) = params.single("phone_number") {
        let _ = Phone::parse(number, Some(phonenumber::country::Id::GB));
        let _ = Phone::parse(number, None);
    }
});
