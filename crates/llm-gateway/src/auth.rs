//! Bearer-token authentication, compared in constant time.

use llm_core::Secret;
use subtle::ConstantTimeEq;

/// Whether `header` (the `Authorization` value) carries one of `keys`. With no keys, everything passes.
///
/// Each comparison is `subtle`'s constant-time equality over the bytes, and every key is compared (no
/// early exit on a match), so the time taken says nothing about how much of a key was right. Only the
/// length of a key can leak, as with any such comparison.
pub fn authorized(keys: &[Secret], header: Option<&str>) -> bool {
    if keys.is_empty() {
        return true;
    }
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let token = token.trim().as_bytes();
    keys.iter()
        .fold(subtle::Choice::from(0), |found, key| {
            found | key.expose().as_bytes().ct_eq(token)
        })
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_token_passes() {
        let keys = vec![
            Secret::new("first-gateway-key"),
            Secret::new("second-gateway-key"),
        ];
        assert!(authorized(&keys, Some("Bearer second-gateway-key")));
        assert!(authorized(&keys, Some("Bearer first-gateway-key")));
        assert!(!authorized(&keys, Some("Bearer first-gateway-ke")));
        assert!(!authorized(&keys, Some("first-gateway-key")));
        assert!(!authorized(&keys, Some("Basic first-gateway-key")));
        assert!(!authorized(&keys, None));
        assert!(authorized(&[], None));
    }
}
