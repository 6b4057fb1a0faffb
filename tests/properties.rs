//! Property tests (issue 8, hostile input): every dialect's key and value rules, and
//! the signature canonicalisation, on generated input. Each property is what a user
//! relies on: nothing panics, limits are counted in Unicode characters, one bad
//! character is enough to refuse, the canonical forms are what the SDK computes
//! whatever the order of the query, and a signature covers every byte of the body.

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tagd::api::{dis, fabric, rds, tms, workspace};
use tagd::auth::signature::{self, Algorithm, RawRequest, SignedRequest};
use tagd::core::tags::{TagRules, TextProblem, TextRule};

const DIALECTS: [(&str, TagRules); 5] = [
    ("tms", tms::RULES),
    ("workspace", workspace::RULES),
    ("fabric", fabric::RULES),
    ("rds", rds::RULES),
    ("dis", dis::RULES),
];

/// A character every rule admits in keys and values.
const PLAIN: char = 'a';

fn rules() -> impl Strategy<Value = (&'static str, TextRule)> {
    (0..DIALECTS.len(), any::<bool>()).prop_map(|(i, key)| {
        let (name, rules) = DIALECTS[i];
        (name, if key { rules.key } else { rules.value })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text at all is judged without panicking, and what is accepted keeps every
    /// part of the rule.
    #[test]
    fn any_text_is_judged_and_accepted_text_keeps_the_rule((name, rule) in rules(), raw in any::<String>()) {
        if rule.problem(&raw).is_none() {
            let chars = raw.chars().count();
            prop_assert!(chars >= rule.min_chars && chars <= rule.max_chars, "{name}: {chars} chars");
            prop_assert!(raw.chars().all(|c| rule.letters.admits(c) || rule.extra.contains(c)), "{name}: {raw:?}");
            prop_assert!(chars == 0 || !raw.trim().is_empty(), "{name}: only space");
            if rule.trimmed {
                prop_assert_eq!(raw.trim(), raw.as_str());
            }
        }
    }

    /// Limits count characters, not bytes: a text of n characters is too long exactly
    /// when n passes the limit, whether its characters take one byte or four.
    #[test]
    fn limits_count_unicode_characters((name, rule) in rules(), extra in 0usize..3, wide in any::<bool>()) {
        // A character of several bytes that the rule admits, where it admits one.
        let c = if wide {
            ['中', 'é', '😀'].into_iter().find(|&c| rule.letters.admits(c) || rule.extra.contains(c)).unwrap_or(PLAIN)
        } else {
            PLAIN
        };
        let at_limit: String = std::iter::repeat_n(c, rule.max_chars).collect();
        prop_assert_eq!(rule.problem(&at_limit), None, "{} at its limit of {} chars", name, rule.max_chars);
        let over: String = std::iter::repeat_n(c, rule.max_chars + 1 + extra).collect();
        let too_long = matches!(rule.problem(&over), Some(TextProblem::TooLong { .. }));
        prop_assert!(too_long, "{} over its limit", name);
    }

    /// One control character anywhere spoils an otherwise good text.
    #[test]
    fn one_bad_character_is_enough((name, rule) in rules(), len in 1usize..20, at in any::<prop::sample::Index>(), bad in prop::sample::select(vec!['\u{0}', '\u{7}', '\n', '\u{7f}', '\u{202e}'])) {
        let len = len.min(rule.max_chars);
        let mut chars: Vec<char> = std::iter::repeat_n(PLAIN, len).collect();
        chars[at.index(len)] = bad;
        let text: String = chars.into_iter().collect();
        prop_assert!(rule.problem(&text).is_some(), "{} accepted {:?}", name, text);
    }

    /// The canonical URI always ends in `/`, and canonicalising is idempotent: the SDK
    /// signs what it would sign again.
    #[test]
    fn canonical_uris_end_in_a_slash_and_are_stable(raw in "(/[a-zA-Z0-9%._~:@!$&'()*+,;=\\-]{0,12}){0,6}") {
        let uri = signature::canonical_uri(&raw);
        prop_assert!(uri.ends_with('/'), "{uri}");
        prop_assert_eq!(signature::canonical_uri(&uri), uri);
    }

    /// The canonical query does not depend on the order of the parameters.
    #[test]
    fn canonical_queries_ignore_parameter_order(pairs in prop::collection::vec(("[a-z%0-9]{1,6}", "[a-zA-Z0-9%+ ]{0,6}"), 0..8), seed in any::<u64>()) {
        let query = |pairs: &[(String, String)]| pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let mut shuffled = pairs.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(signature::canonical_query(&query(&pairs)), signature::canonical_query(&query(&shuffled)));
    }

    /// A signature made as the SDK makes it verifies, and changing any one byte of
    /// the body, or the path, makes it fail.
    #[test]
    fn signatures_cover_every_byte_of_the_body(body in prop::collection::vec(any::<u8>(), 1..200), flip in any::<prop::sample::Index>(), path in "/v1\\.0/[a-z-]{1,10}") {
        let now = time::OffsetDateTime::now_utc();
        let date = format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute(), now.second());
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert("x-sdk-date", HeaderValue::from_str(&date).expect("date"));
        let signed_headers = vec!["host".to_owned(), "x-sdk-date".to_owned()];
        let original = body;
        let canonical = signature::canonical_request(
            &RawRequest { method: "POST", raw_path: &path, raw_query: "", headers: &headers, body: &original },
            &signed_headers,
            &signature::payload_hash(&original),
        ).expect("canonical");
        let sig = signature::sign(&Algorithm::SdkHmacSha256, "AK", "SK", &date, &canonical);
        let parsed = SignedRequest::parse(&format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature={sig}")).expect("parse");
        let window = std::time::Duration::from_secs(900);
        let verifies = |path: &str, body: &[u8]| {
            signature::verify(&parsed, "SK", &RawRequest { method: "POST", raw_path: path, raw_query: "", headers: &headers, body }, now, window).is_ok()
        };
        prop_assert!(verifies(&path, &original));
        let mut changed = original.clone();
        let i = flip.index(changed.len());
        changed[i] ^= 0x01;
        prop_assert!(!verifies(&path, &changed), "byte {} changed", i);
        let other_path = format!("{path}x");
        prop_assert!(!verifies(&other_path, &original));
    }
}
