//! Scrubbing recorded exchanges before they become fixtures, and the last-line check that no key leaks.
//!
//! Request headers are never written at all (the fixture format has none), so `authorization`,
//! `x-api-key`, `x-goog-api-key`, `api-key`, cookies and `openai-organization`/`openai-project` go with
//! them. Response headers are reduced to an allow-list. Key query parameters are removed from paths, and
//! organisation and project ids (`org-…`, `proj_…`) are replaced in bodies.

use std::collections::BTreeMap;

/// Response headers kept exactly (lowercase).
pub const ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    "retry-after-ms",
    "request-id",
    "x-request-id",
];

/// Response header prefixes kept (lowercase).
pub const ALLOWED_HEADER_PREFIXES: &[&str] = &["x-ratelimit-", "anthropic-ratelimit-"];

/// Query parameters that carry keys (compared without case).
pub const KEY_QUERY_PARAMS: &[&str] = &["key", "api_key", "apikey", "api-key", "access_token"];

/// What replaces an organisation or project id.
pub const REDACTED: &str = "REDACTED";

/// Whether response header `name` may be written to a fixture.
pub fn is_allowed_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ALLOWED_HEADERS.contains(&name.as_str())
        || ALLOWED_HEADER_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// The allow-listed response headers, names lowercased, repeated headers joined with `, `.
pub fn response_headers(headers: &[(String, String)]) -> BTreeMap<String, String> {
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        if !is_allowed_header(name) {
            continue;
        }
        let value = String::from_utf8(scrub_ids(value.as_bytes())).unwrap_or_default();
        kept.entry(name.to_ascii_lowercase())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    kept
}

/// `path` (with query) without key parameters; the `?` goes too when nothing is left.
pub fn path(path: &str) -> String {
    let Some((route, query)) = path.split_once('?') else {
        return path.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !KEY_QUERY_PARAMS
                .iter()
                .any(|key| key.eq_ignore_ascii_case(name))
        })
        .collect();
    if kept.is_empty() {
        route.to_owned()
    } else {
        format!("{route}?{}", kept.join("&"))
    }
}

/// `body` with organisation (`org-…`) and project (`proj_…`) ids replaced by `REDACTED`; every other
/// byte is kept, so stream bodies stay byte for byte what was sent.
///
/// An id is the prefix at a word start followed by at least 8 letters, digits, `-` or `_`.
pub fn scrub_ids(body: &[u8]) -> Vec<u8> {
    const PREFIXES: [&[u8]; 2] = [b"org-", b"proj_"];
    const MIN_ID_LEN: usize = 8;
    let is_id_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let at_word_start = i == 0 || !is_id_byte(body[i - 1]);
        let prefix = PREFIXES
            .iter()
            .find(|p| at_word_start && body[i..].starts_with(p));
        if let Some(prefix) = prefix {
            let start = i + prefix.len();
            let len = body[start..].iter().take_while(|b| is_id_byte(**b)).count();
            if len >= MIN_ID_LEN {
                out.extend_from_slice(prefix);
                out.extend_from_slice(REDACTED.as_bytes());
                i = start + len;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// A configured key value and the variable it came from.
#[derive(Clone)]
pub struct SecretValue {
    /// The variable (`GROQ_API_KEY`): safe to print.
    pub var: String,
    /// The value: never printed.
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("var", &self.var)
            .finish_non_exhaustive()
    }
}

/// Values shorter than this are not treated as keys (they would match ordinary text).
pub const MIN_SECRET_LEN: usize = 6;

/// The variable whose value occurs in `bytes`, if any.
pub fn find_secret<'a>(bytes: &[u8], secrets: &'a [SecretValue]) -> Option<&'a str> {
    secrets
        .iter()
        .filter(|s| s.value.len() >= MIN_SECRET_LEN)
        .find(|s| {
            bytes
                .windows(s.value.len())
                .any(|window| window == s.value.as_bytes())
        })
        .map(|s| s.var.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_headers_survive() {
        let headers: Vec<(String, String)> = [
            ("Content-Type", "application/json"),
            ("set-cookie", "__cf_bm=abc"),
            ("openai-organization", "org-abcdefgh12345678"),
            ("openai-project", "proj_abcdefgh1234"),
            ("x-ratelimit-remaining-requests", "99"),
            ("anthropic-ratelimit-tokens-limit", "1000"),
            ("retry-after", "2"),
            ("retry-after-ms", "2000"),
            ("request-id", "req_1"),
            ("x-request-id", "abc"),
            ("authorization", "Bearer x"),
            ("cf-ray", "123"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
        let kept = response_headers(&headers);
        let names: Vec<_> = kept.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "anthropic-ratelimit-tokens-limit",
                "content-type",
                "request-id",
                "retry-after",
                "retry-after-ms",
                "x-ratelimit-remaining-requests",
                "x-request-id"
            ]
        );
    }

    #[test]
    fn key_query_parameters_are_removed() {
        assert_eq!(
            path("/v1beta/models/m:streamGenerateContent?alt=sse&key=AIzaSECRET"),
            "/v1beta/models/m:streamGenerateContent?alt=sse"
        );
        assert_eq!(path("/v1/models?KEY=x"), "/v1/models");
        assert_eq!(path("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(path("/x?monkey=1"), "/x?monkey=1");
    }

    #[test]
    fn organisation_and_project_ids_are_replaced_and_nothing_else_changes() {
        let body = b"data: {\"org\":\"org-AbCdEf123456\",\"p\":\"proj_abc123XYZ9\"}\n\n";
        assert_eq!(
            scrub_ids(body),
            b"data: {\"org\":\"org-REDACTED\",\"p\":\"proj_REDACTED\"}\n\n".to_vec()
        );
        // Short or embedded matches are ordinary text.
        let text = b"an org-chart, my-org-12345678901, proj_x";
        assert_eq!(scrub_ids(text), text.to_vec());
    }

    #[test]
    fn secrets_are_found_by_variable_and_debug_hides_them() {
        let secrets = vec![
            SecretValue {
                var: "SHORT".into(),
                value: "abc".into(),
            },
            SecretValue {
                var: "GROQ_API_KEY".into(),
                value: "gsk_live_123456".into(),
            },
        ];
        assert_eq!(find_secret(b"abc abc", &secrets), None);
        assert_eq!(
            find_secret(b"{\"echo\":\"gsk_live_123456\"}", &secrets),
            Some("GROQ_API_KEY")
        );
        assert!(!format!("{secrets:?}").contains("gsk_live"));
    }
}
