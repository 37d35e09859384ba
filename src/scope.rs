//! Scope values (RFC 6749 §3.3): a space-delimited list of scope tokens.

/// Splits a `scope` parameter into distinct tokens, in the order given; `None` when a
/// token has characters the syntax forbids.
pub fn parse(scope: &str) -> Option<Vec<String>> {
    let mut tokens: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(token) {
            return None;
        }
        if !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_owned());
        }
    }
    Some(tokens)
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: printable ASCII except `"` and `\`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Joins tokens into a scope value, or `None` when there are none.
pub fn join(tokens: &[String]) -> Option<String> {
    (!tokens.is_empty()).then(|| tokens.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_split_deduplicated_and_checked() {
        assert_eq!(parse("a  b a").unwrap(), ["a", "b"]);
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert!(parse("ok bad\"quote").is_none());
        assert!(parse("tab\there").is_none());
        assert!(parse("é").is_none());
    }
}
