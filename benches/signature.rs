//! AK/SK signature verification: the work every signed request does before a handler
//! runs.
//!
//! The SDK signs a canonical form of the request, so tagd rebuilds it (canonical path,
//! sorted query, signed headers, SHA-256 of the body) and recomputes the HMAC. The
//! cases are the SDK test vectors of `src/auth/signature.rs` (a small TMS batch-create
//! and a V11 DIS GET) and a W1-sized TMS body of 50 resources x 10 tags, where the body
//! hash dominates. `per_request` adds what `authenticate_signed` does around `verify`
//! except the store lookup: parsing `Authorization` and unsealing the secret key.
//!
//! Run with `cargo bench --bench signature`.

use std::hint::black_box;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use time::OffsetDateTime;

use tagd::auth::signature::{
    canonical_request, parse_sdk_date, payload_hash, sign, verify, Algorithm, RawRequest,
    SignedRequest,
};
use tagd::auth::vault::Vault;

// The test vectors of src/auth/signature.rs (made with the Python SDK's signer).
const AK: &str = "AKTESTEXAMPLE0000001";
const SK: &str = "SKtestSecretExample0123456789abcdefghijk";
const SDK_DATE: &str = "20250101T000000Z";
const TMS_PATH: &str = "/v1.0/resource-tags/batch-create";
const TMS_BODY: &str = r#"{"project_id": "0123456789abcdef0123456789abcdef", "resources": [{"resource_id": "r1", "resource_type": "disk"}], "tags": [{"key": "ENV", "value": "dev"}]}"#;
const TMS_SIGNED: &str = "content-type;host;user-agent;x-domain-id;x-sdk-date";
const TMS_SIGNATURE: &str = "25a338512eecfc3f1921be77734162e02805d033decc16896d2cfa420d5d408d";
const V11_PATH: &str = "/v2/0123456789abcdef0123456789abcdef/stream/stream-1/tags";
const V11_SIGNED: &str = "content-type;host;user-agent;x-project-id;x-sdk-date";
const V11_SIGNATURE: &str = "08597b817e8c17f8b2de8798bc119ea2f891f0270a4d777ef444559a7c8371d4";

const WINDOW: Duration = Duration::from_secs(900);

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    h
}

fn tms_headers() -> HeaderMap {
    headers(&[
        ("user-agent", "huaweicloud-usdk-python/3.0; vector"),
        ("content-type", "application/json;charset=utf-8"),
        ("x-sdk-date", SDK_DATE),
        ("x-domain-id", "dom1"),
        ("host", "127.0.0.1:18080"),
    ])
}

fn v11_headers() -> HeaderMap {
    headers(&[
        ("user-agent", "huaweicloud-usdk-python/3.0; vector"),
        ("content-type", "application/json"),
        ("x-sdk-date", SDK_DATE),
        ("x-project-id", "0123456789abcdef0123456789abcdef"),
        ("host", "127.0.0.1:18080"),
    ])
}

/// The W1 request: 50 resources x 10 tags, about 3 KB of JSON.
fn w1_body() -> String {
    let resources: Vec<_> = (0..50)
        .map(|i| serde_json::json!({ "resource_id": format!("disk-{i:07}"), "resource_type": "disk" }))
        .collect();
    let tags: Vec<_> = (0..10)
        .map(|i| serde_json::json!({ "key": format!("key-{i}"), "value": format!("value-{i}") }))
        .collect();
    serde_json::json!({
        "project_id": "0123456789abcdef0123456789abcdef",
        "resources": resources,
        "tags": tags,
    })
    .to_string()
}

fn raw<'a>(path: &'a str, headers: &'a HeaderMap, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest {
        method: if body.is_empty() { "GET" } else { "POST" },
        raw_path: path,
        raw_query: "",
        headers,
        body,
    }
}

fn signatures(c: &mut Criterion) {
    // Five minutes after the vectors' X-Sdk-Date, inside the 15-minute window.
    let now: OffsetDateTime = parse_sdk_date("20250101T000500Z").expect("date");
    let tms_h = tms_headers();
    let v11_h = v11_headers();

    let tms_auth = format!(
        "SDK-HMAC-SHA256 Access={AK}, SignedHeaders={TMS_SIGNED}, Signature={TMS_SIGNATURE}"
    );
    let tms_signed = SignedRequest::parse(&tms_auth).expect("parse");
    let tms_req = raw(TMS_PATH, &tms_h, TMS_BODY.as_bytes());
    assert_eq!(verify(&tms_signed, SK, &tms_req, now, WINDOW), Ok(()));

    // The W1 body, signed here the way the SDK signs.
    let w1 = w1_body();
    let w1_req = raw(TMS_PATH, &tms_h, w1.as_bytes());
    let w1_canonical = canonical_request(
        &w1_req,
        &tms_signed.signed_headers,
        &payload_hash(w1.as_bytes()),
    )
    .expect("canonical request");
    let w1_auth = format!(
        "SDK-HMAC-SHA256 Access={AK}, SignedHeaders={TMS_SIGNED}, Signature={}",
        sign(&Algorithm::SdkHmacSha256, AK, SK, SDK_DATE, &w1_canonical)
    );
    let w1_signed = SignedRequest::parse(&w1_auth).expect("parse");
    assert_eq!(verify(&w1_signed, SK, &w1_req, now, WINDOW), Ok(()));

    let v11_auth = format!(
        "V11-HMAC-SHA256 Credential={AK}/20250101/cn-north-4/dis, SignedHeaders={V11_SIGNED}, Signature={V11_SIGNATURE}"
    );
    let v11_signed = SignedRequest::parse(&v11_auth).expect("parse");
    let v11_req = raw(V11_PATH, &v11_h, b"");
    assert_eq!(verify(&v11_signed, SK, &v11_req, now, WINDOW), Ok(()));

    let mut g = c.benchmark_group("verify");
    g.bench_function("sdk_hmac_sha256_tms_vector", |b| {
        b.iter(|| verify(black_box(&tms_signed), SK, black_box(&tms_req), now, WINDOW))
    });
    g.bench_function("v11_hmac_sha256_dis_get", |b| {
        b.iter(|| verify(black_box(&v11_signed), SK, black_box(&v11_req), now, WINDOW))
    });
    g.throughput(Throughput::Bytes(w1.len() as u64));
    g.bench_function("sdk_hmac_sha256_tms_50x10", |b| {
        b.iter(|| verify(black_box(&w1_signed), SK, black_box(&w1_req), now, WINDOW))
    });
    g.finish();

    // What `Identity::authenticate_signed` computes for a permanent key, without the
    // store read: parse the header, unseal the secret, verify.
    let vault = Vault::from_hex(&"42".repeat(32)).expect("vault key");
    let sealed = vault.seal(AK, SK);
    let per_request = |auth: &str, req: &RawRequest<'_>| {
        let signed = SignedRequest::parse(auth).map_err(|e| e.to_string())?;
        let secret = vault
            .unseal(&signed.access_key, &sealed)
            .map_err(|e| e.to_string())?;
        verify(&signed, &secret, req, now, WINDOW).map_err(|e| e.to_string())
    };
    assert_eq!(per_request(&tms_auth, &tms_req), Ok(()));
    assert_eq!(per_request(&v11_auth, &v11_req), Ok(()));

    let mut g = c.benchmark_group("per_request");
    g.bench_function("sdk_hmac_sha256_tms_vector", |b| {
        b.iter(|| per_request(black_box(&tms_auth), black_box(&tms_req)))
    });
    g.bench_function("v11_hmac_sha256_dis_get", |b| {
        b.iter(|| per_request(black_box(&v11_auth), black_box(&v11_req)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = signatures
}
criterion_main!(benches);
