//! Tenant isolation, proven (issue 8, point 5): a generated matrix calls every route of
//! every dialect with the credentials of someone who must not reach the victim's data
//! (a token and an access key of another project of the victim's domain, and of another
//! domain) and with the victim's own credentials once they are dead (expired, revoked,
//! disabled, deleted, or whose user, project or domain is gone). None may get a 2xx on
//! a victim's resource, read anything of the victim's, or write anything of the victim's.
//!
//! Two kinds of route are told apart:
//! - **Victim routes** name the victim: its project in the path (every per-service API)
//!   or in the TMS body/query (`project_id`), its user id, its access key or its token.
//!   Live attackers must be refused (401/403/404), never 2xx.
//! - **Own-scope routes** name nothing of the victim's and answer for the caller's own
//!   scope: TMS listings without a project (`tag-keys`, `tag-values`, `tags`,
//!   `predefine_tags`, `quotas`, `providers`), global (`cdn`) resources, which live in the
//!   caller's domain, the IAM listings, and every project route again with the
//!   attacker's *own* project and the victim's resource ids. A live attacker may get
//!   200 there (an empty list, or `failed_resources` naming only what it sent), so the
//!   rule is "nothing read, nothing written", not "not 2xx".
//!
//! Dead credentials must get 401 on every route that authenticates. `GET /` and
//! `GET /{version}` need no credential and must only not leak.
//!
//! "Nothing read": no response carries a victim secret (distinctive tag keys and
//! values, resource ids and names, access key ids, the victim domain's id) that the
//! request did not itself contain. "Nothing written": the victim's tags, resources,
//! predefined tags, access keys and tokens, read through every dialect with the
//! victim's own credentials and straight from the store, are the same after the matrix
//! as before. The positive control then sends the same requests with the victim's own
//! token and access key and expects 2xx (and its reads to show victim data), so the
//! matrix cannot pass because the requests are malformed.
//!
//! What the matrix does not treat as a breach, by tagd's design: a domain is the
//! tenant, and tagd has no per-user or per-project role assignments, so any user of the
//! victim's domain holding a domain-scoped credential (a domain token, or a permanent
//! access key, which always acts with domain scope) may reach every project of it.
//! "Another project" is therefore a project-scoped token and the temporary access key
//! made from it, both of an administrator of the victim's domain (the strongest such
//! attacker). tagd does confine such a token to its project (it cannot even be
//! exchanged for a token of another project), but it may read its domain's predefined
//! tags (the domain's shared vocabulary, not project data); and presenting a victim's
//! own token (`X-Subject-Token`) is possession of it, so the token routes are only
//! tested across domains.
//! The admin listing (`GET /tagd/v1/resources?project_id=`) filters the caller's own
//! domain, so another domain's project id is an empty filter, not a refusal.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{credential, free_port, sigterm, spawn_with};

const PASSWORD: &str = "isolation-password-42";

/// The regional resource types the victim holds, one resource each.
const REGIONAL: [&str; 6] = [
    "disk",
    "ecs",
    "workspace-desktop",
    "fabric-workspace",
    "rds",
    "dis",
];

// ---------------------------------------------------------------------------------------
// HTTP, with a token or signed with an access key (SDK-HMAC-SHA256)

#[derive(Clone)]
enum Auth {
    Token(String),
    Keys {
        access: String,
        secret: String,
        security_token: Option<String>,
    },
}

struct Reply {
    status: u16,
    body: Value,
    /// `X-Subject-Token`, where a token was issued.
    subject: Option<String>,
    /// The body and every header value: what a leak check must search.
    text: String,
}

struct Api {
    base: String,
    host: String,
    http: reqwest::Client,
}

/// Percent-encodes all but the unreserved characters, as the SDKs' canonical form does.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A minimal SDK-HMAC-SHA256 signer, written from the algorithm (docs: the SDKs'
/// `signer.py`) rather than taken from tagd, so that tagd's verifier is checked against
/// an independent implementation. Paths here are plain ASCII; queries are unescaped.
fn authorization(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    access: &str,
    secret: &str,
) -> String {
    let mut uri = path.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(k), encode(v))
        })
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut sorted = headers.to_vec();
    sorted.sort();
    let canonical_headers: String = sorted
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed = sorted
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{method}\n{uri}\n{query}\n{canonical_headers}\n{signed}\n{}",
        hex_sha256(body)
    );
    let date = &sorted
        .iter()
        .find(|(k, _)| k == "x-sdk-date")
        .expect("x-sdk-date is signed")
        .1;
    let to_sign = format!(
        "SDK-HMAC-SHA256\n{date}\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    format!("SDK-HMAC-SHA256 Access={access}, SignedHeaders={signed}, Signature={signature}")
}

fn sdk_date() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

impl Api {
    fn new(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            host: format!("127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    /// Sends `method target` with `body` (JSON text) and `extra` headers, authenticated
    /// by `auth` (a token header, or a signature over the request).
    async fn send(
        &self,
        auth: Option<&Auth>,
        method: &str,
        target: &str,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.request(
            method.parse().expect("method"),
            format!("{}{target}", self.base),
        );
        let bytes = body.unwrap_or_default().as_bytes().to_vec();
        let mut headers: Vec<(String, String)> = Vec::new();
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        match auth {
            None => {}
            Some(Auth::Token(t)) => req = req.header("X-Auth-Token", t),
            Some(Auth::Keys {
                access,
                secret,
                security_token,
            }) => {
                headers.push(("host".into(), self.host.clone()));
                headers.push(("x-sdk-date".into(), sdk_date()));
                if let Some(t) = security_token {
                    headers.push(("x-security-token".into(), t.clone()));
                }
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let signature =
                    authorization(method, path, query, &headers, &bytes, access, secret);
                req = req.header("Authorization", signature);
            }
        }
        for (name, value) in &headers {
            // reqwest writes Host itself, the same value that was signed.
            if name != "host" {
                req = req.header(name.as_str(), value.as_str());
            }
        }
        if body.is_some() {
            req = req.body(bytes);
        }
        let resp = req.send().await.expect("tagd answers");
        let status = resp.status().as_u16();
        let subject = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut text: String = resp
            .headers()
            .values()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("\n");
        let body_text = resp.text().await.expect("body");
        text.push('\n');
        text.push_str(&body_text);
        Reply {
            status,
            body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
            subject,
            text,
        }
    }

    async fn json(&self, auth: &Auth, method: &str, target: &str, body: &Value) -> Reply {
        self.send(Some(auth), method, target, Some(&body.to_string()), &[])
            .await
    }

    async fn get(&self, auth: &Auth, target: &str) -> Reply {
        self.send(Some(auth), "GET", target, None, &[]).await
    }

    /// A password token; the token and the response body.
    async fn login(
        &self,
        user: &str,
        domain: &str,
        password: &str,
        scope: Value,
    ) -> (String, Value) {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": domain}}}}, "scope": scope}});
        let r = self
            .send(
                None,
                "POST",
                "/v3/auth/tokens?nocatalog=true",
                Some(&body.to_string()),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "login of {user}: {}", r.text);
        (r.subject.expect("X-Subject-Token"), r.body)
    }

    /// A permanent access key for `user_id`, made by `by`.
    async fn permanent_key(&self, by: &Auth, user_id: &str) -> Auth {
        let r = self
            .json(
                by,
                "POST",
                "/v3.0/OS-CREDENTIAL/credentials",
                &json!({"credential": {"user_id": user_id, "description": "isolation"}}),
            )
            .await;
        assert_eq!(r.status, 201, "access key for {user_id}: {}", r.text);
        Auth::Keys {
            access: field(&r.body["credential"]["access"]),
            secret: field(&r.body["credential"]["secret"]),
            security_token: None,
        }
    }

    /// A temporary access key with the scope (and at most the life) of `token`.
    async fn temporary_key(&self, token: &str) -> Auth {
        let r = self
            .json(
                &Auth::Token(token.to_owned()),
                "POST",
                "/v3.0/OS-CREDENTIAL/securitytokens",
                &json!({"auth": {"identity": {"methods": ["token"]}}}),
            )
            .await;
        assert_eq!(r.status, 201, "temporary key: {}", r.text);
        Auth::Keys {
            access: field(&r.body["credential"]["access"]),
            secret: field(&r.body["credential"]["secret"]),
            security_token: Some(field(&r.body["credential"]["securitytoken"])),
        }
    }

    async fn revoke(&self, by: &Auth, token: &str) {
        let r = self
            .send(
                Some(by),
                "DELETE",
                "/v3/auth/tokens",
                None,
                &[("X-Subject-Token", token)],
            )
            .await;
        assert_eq!(r.status, 204, "revoke: {}", r.text);
    }
}

fn field(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string, not {v}"))
        .to_owned()
}

fn access_of(auth: &Auth) -> String {
    match auth {
        Auth::Keys { access, .. } => access.clone(),
        Auth::Token(_) => panic!("not an access key"),
    }
}

/// Runs `tagd admin ARGS` on the data directory; its standard output.
async fn cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("TAGD_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tagd admin");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().await.expect("tagd admin");
    assert!(
        out.status.success(),
        "tagd admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a user (password [`PASSWORD`]); its id.
async fn new_user(dir: &Path, domain: &str, name: &str, admin: bool) -> String {
    let mut args = vec!["user", "create", "--domain", domain];
    if admin {
        args.push("--admin");
    }
    args.push(name);
    first_field(&cli(dir, &args, Some(&format!("{PASSWORD}\n"))).await)
}

/// The id a `create` command prints first.
fn first_field(out: &str) -> String {
    out.split('\t').next().expect("id").trim().to_owned()
}

// ---------------------------------------------------------------------------------------
// The victim

struct Victim {
    domain_id: String,
    domain_name: String,
    project: String,
    /// Resource ids by type (the six regional ones and `cdn`).
    ids: BTreeMap<&'static str, String>,
    names: BTreeMap<&'static str, String>,
    /// Two tag keys every resource carries (`ka` is overwritten and `kb` deleted by the
    /// write attacks); desktops and streams also carry `action`.
    ka: String,
    kb: String,
    /// Predefined tags: the first pair is the target of deletes, the second of replaces.
    predefined: [(String, String); 2],
    salt: String,
    /// The first-run administrator's name and password.
    admin: (String, String),
    /// A user of the victim's domain whose access key the key-management routes target.
    keys_user_id: String,
    /// That user's access key (re-made by every seed).
    target_key: String,
    /// A token of the victim's the token routes target (re-made by every seed).
    subject: String,
    domain_token: Auth,
    project_token: Auth,
    keys: Auth,
}

impl Victim {
    fn value(&self, resource_type: &str, key: &str) -> String {
        format!("sv-{}-{key}-{}", short(resource_type), self.salt)
    }

    /// Everything of the victim's no attacker may see (unless it sent it itself). The
    /// predefined tags are listed apart: callers of the victim's domain may see them.
    fn secrets(&self) -> Vec<String> {
        let mut s = vec![self.ka.clone(), self.kb.clone()];
        for t in REGIONAL.iter().chain(["cdn"].iter()) {
            s.push(self.ids[t].clone());
            s.push(self.names[t].clone());
            for k in ["a", "b", "action"] {
                s.push(self.value(t, k));
            }
        }
        s.push(self.target_key.clone());
        s.push(access_of(&self.keys));
        s.push(self.subject.clone());
        s
    }

    fn predefined_secrets(&self) -> Vec<String> {
        self.predefined
            .iter()
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect()
    }
}

/// Puts the victim's data in place, or back in place after the positive control wrote
/// over it: resources, tags, predefined tags, the target access key and the subject
/// token. Idempotent.
async fn seed(api: &Api, v: &mut Victim) {
    let mut resources: Vec<Value> = REGIONAL
        .iter()
        .map(|t| json!({"project_id": v.project, "resource_type": t, "resource_id": v.ids[t], "name": v.names[t]}))
        .collect();
    resources
        .push(json!({"resource_type": "cdn", "resource_id": v.ids["cdn"], "name": v.names["cdn"]}));
    let r = api
        .json(
            &v.domain_token,
            "POST",
            "/tagd/v1/resources",
            &json!({ "resources": resources }),
        )
        .await;
    assert_eq!(r.status, 200, "register: {}", r.text);
    for t in REGIONAL.iter().chain(["cdn"].iter()) {
        let mut tags = vec![
            json!({"key": v.ka, "value": v.value(t, "a")}),
            json!({"key": v.kb, "value": v.value(t, "b")}),
        ];
        if matches!(*t, "workspace-desktop" | "dis") {
            tags.push(json!({"key": "action", "value": v.value(t, "action")}));
        }
        let mut body =
            json!({"resources": [{"resource_id": v.ids[t], "resource_type": t}], "tags": tags});
        if *t != "cdn" {
            body["project_id"] = json!(v.project);
        }
        let r = api
            .json(
                &v.domain_token,
                "POST",
                "/v1.0/resource-tags/batch-create",
                &body,
            )
            .await;
        assert_eq!(
            (r.status, &r.body["failed_resources"]),
            (200, &json!([])),
            "tag {t}: {}",
            r.text
        );
    }
    // The control's replacements, if any (a pair that is not there is refused: ignored).
    for (k, _) in &v.predefined {
        api.json(
            &v.domain_token,
            "POST",
            "/v1.0/predefine_tags/action",
            &json!({"action": "delete", "tags": [{"key": k, "value": "pwned"}]}),
        )
        .await;
    }
    let tags: Vec<Value> = v
        .predefined
        .iter()
        .map(|(k, val)| json!({"key": k, "value": val}))
        .collect();
    let r = api
        .json(
            &v.domain_token,
            "POST",
            "/v1.0/predefine_tags/action",
            &json!({"action": "create", "tags": tags}),
        )
        .await;
    assert_eq!(r.status, 204, "predefined tags: {}", r.text);
    // The key user holds exactly one key: the target.
    let r = api
        .get(
            &v.domain_token,
            &format!("/v3.0/OS-CREDENTIAL/credentials?user_id={}", v.keys_user_id),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for k in r.body["credentials"].as_array().expect("credentials") {
        let access = field(&k["access"]);
        let r = api
            .send(
                Some(&v.domain_token),
                "DELETE",
                &format!("/v3.0/OS-CREDENTIAL/credentials/{access}"),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    v.target_key = access_of(&api.permanent_key(&v.domain_token, &v.keys_user_id).await);
    let (subject, _) = api
        .login(
            &v.admin.0,
            &v.domain_name,
            &v.admin.1,
            json!({"project": {"id": v.project}}),
        )
        .await;
    v.subject = subject;
}

// ---------------------------------------------------------------------------------------
// The routes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// Names the victim: live attackers must not get 2xx.
    Victim,
    /// Answers for the caller's own scope: nothing read, nothing written.
    Own,
    /// Needs no credential (the TMS version documents).
    Public,
}

#[derive(Clone)]
struct Route {
    method: &'static str,
    /// Path and query, with placeholders (see [`fill`]).
    target: String,
    body: Option<String>,
    class: Class,
    /// Needs a domain-wide credential (global resources, predefined-tag writes, key
    /// management, the admin API): no control with the victim's project-scoped token.
    domain_wide: bool,
    /// The victim's own answer must show victim data: proof that the leak check fires.
    reads: bool,
    /// Sends a victim token as `X-Subject-Token` (see the module doc: not sent by
    /// callers of the victim's own domain).
    subject: bool,
    /// Exchanges the caller's own token (`{own_token}`) for one of the victim's
    /// project: token callers only.
    exchange: bool,
    /// The attacker's-own-project twin of a victim route; the control skips it.
    twin: bool,
}

fn route(method: &'static str, target: &str, body: Option<Value>, class: Class) -> Route {
    Route {
        method,
        target: target.to_owned(),
        body: body.map(|b| b.to_string()),
        class,
        domain_wide: false,
        reads: false,
        subject: false,
        exchange: false,
        twin: false,
    }
}

impl Route {
    fn reads(mut self) -> Self {
        self.reads = true;
        self
    }
    fn domain_wide(mut self) -> Self {
        self.domain_wide = true;
        self
    }
    fn subject(mut self) -> Self {
        self.subject = true;
        self
    }
    fn exchange(mut self) -> Self {
        self.exchange = true;
        self
    }
}

/// A route naming a project (`{p}`): once with the victim's project (a victim route),
/// once with the caller's own project and the victim's resource ids (own scope).
fn per_project(routes: &mut Vec<Route>, r: Route) {
    let fix = |s: &str, p: &str| s.replace("{p}", p);
    let mut victim = r.clone();
    victim.target = fix(&r.target, "{victim_p}");
    victim.body = r.body.as_deref().map(|b| fix(b, "{victim_p}"));
    victim.class = Class::Victim;
    let mut own = r.clone();
    own.target = fix(&r.target, "{own_p}");
    own.body = r.body.as_deref().map(|b| fix(b, "{own_p}"));
    own.class = Class::Own;
    own.twin = true;
    routes.push(victim);
    routes.push(own);
}

/// Every route of every dialect (from the routers in `src/api/*.rs`), reads first and
/// the most destructive writes last, so that the positive control's own writes do not
/// spoil its later requests. Placeholders: `{p}` the project, `{disk}` ... `{cdn}` the
/// victim's resource ids, `{ka}`/`{kb}` its tag keys, `{pk1}`/`{pv1}`/`{pk2}`/`{pv2}`
/// its predefined tags, `{uid}` its key user, `{ak}` that user's access key, `{subject}`
/// a victim token, `{own_token}` the caller's own token.
fn routes() -> Vec<Route> {
    use Class::{Own, Public};
    let mut r: Vec<Route> = Vec::new();
    let all_regional: Vec<Value> = REGIONAL
        .iter()
        .map(|t| json!({"resource_id": format!("{{{}}}", short(t)), "resource_type": t}))
        .collect();
    let create_tags =
        json!([{"key": "{ka}", "value": "pwned"}, {"key": "attacker-key", "value": "pwned"}]);
    let delete_tags = json!([{"key": "{kb}"}, {"key": "action"}]);

    // Public.
    r.push(route("GET", "/", None, Public));
    r.push(route("GET", "/v1.0", None, Public));

    // TMS reads.
    for t in REGIONAL {
        per_project(
            &mut r,
            route(
                "GET",
                &format!(
                    "/v2.0/resources/{{{}}}/tags?project_id={{p}}&resource_type={t}",
                    short(t)
                ),
                None,
                Own,
            )
            .reads(),
        );
    }
    per_project(
        &mut r,
        route(
            "POST",
            "/v1.0/resource-instances/filter",
            Some(json!({"project_id": "{p}", "resource_types": REGIONAL})),
            Own,
        )
        .reads(),
    );
    per_project(
        &mut r,
        route(
            "GET",
            &format!(
                "/v1.0/tags?project_id={{p}}&resource_types={}",
                REGIONAL.join(",")
            ),
            None,
            Own,
        )
        .reads(),
    );
    r.push(
        route(
            "GET",
            "/v2.0/resources/{cdn}/tags?resource_type=cdn",
            None,
            Own,
        )
        .reads()
        .domain_wide(),
    );
    r.push(
        route(
            "POST",
            "/v1.0/resource-instances/filter",
            Some(json!({"resource_types": ["cdn"]})),
            Own,
        )
        .reads()
        .domain_wide(),
    );
    r.push(route("GET", "/v1.0/tags", None, Own).reads().domain_wide());
    r.push(route("GET", "/v1.0/tag-keys", None, Own).reads());
    r.push(route("GET", "/v1.0/tag-values?key={ka}", None, Own).reads());
    r.push(route("GET", "/v1.0/predefine_tags?limit=1000", None, Own).reads());
    r.push(route("GET", "/v1.0/tms/quotas", None, Own));
    r.push(route("GET", "/v1.0/tms/providers?limit=200", None, Own));

    // Per-service reads.
    for (target, reads) in [
        ("/v2/{p}/desktops/{desktop}/tags", true),
        ("/v2/{p}/desktops/tags", true),
        ("/v1/{p}/fabric-workspace/{fabric}/tags", true),
        ("/v1/{p}/fabric-workspace/tags", true),
        ("/v3/{p}/instances/{rds}/tags", true),
        ("/v3/{p}/tags", true),
        ("/v3/{p}/tags/predefined-tag", true),
        ("/v3/{p}/instances", true),
        ("/v2/{p}/stream/{dis}/tags", true),
        ("/v2/{p}/stream/tags", true),
    ] {
        let mut x = route("GET", target, None, Own);
        x.reads = reads;
        per_project(&mut r, x);
    }
    for (target, body, reads) in [
        (
            "/v2/{p}/desktops/resource-instances/action",
            json!({"action": "filter"}),
            true,
        ),
        (
            "/v2/{p}/desktops/resource_instances/action",
            json!({"action": "filter"}),
            true,
        ),
        (
            "/v2/{p}/desktops/resource-instances/action",
            json!({"action": "count"}),
            false,
        ),
        (
            "/v1/{p}/fabric-workspace/resource-instances/filter",
            json!({}),
            true,
        ),
        (
            "/v1/{p}/fabric-workspace/resource-instances/count",
            json!({}),
            false,
        ),
        (
            "/v2/{p}/stream/resource_instances/action",
            json!({"action": "filter"}),
            true,
        ),
        (
            "/v2/{p}/stream/resource_instances/action",
            json!({"action": "count"}),
            false,
        ),
    ] {
        let mut x = route("POST", target, Some(body), Own);
        x.reads = reads;
        per_project(&mut r, x);
    }

    // IAM and admin reads.
    r.push(route("GET", "/v3/projects", None, Own));
    r.push(route("GET", "/v3/auth/projects", None, Own));
    r.push(route("GET", "/v3/auth/domains", None, Own));
    r.push(route("GET", "/v3.0/OS-CREDENTIAL/credentials", None, Own).domain_wide());
    r.push(
        route(
            "GET",
            "/v3.0/OS-CREDENTIAL/credentials?user_id={uid}",
            None,
            Class::Victim,
        )
        .reads()
        .domain_wide(),
    );
    r.push(
        route(
            "GET",
            "/v3.0/OS-CREDENTIAL/credentials/{ak}",
            None,
            Class::Victim,
        )
        .domain_wide(),
    );
    r.push(route("GET", "/v3/auth/tokens", None, Class::Victim).subject());
    r.push(
        route("GET", "/tagd/v1/resources", None, Own)
            .reads()
            .domain_wide(),
    );
    // The admin listing filters the caller's own domain: another domain's project is
    // a filter that matches nothing (200, empty), not a refusal. Own scope, both ways.
    for (p, twin) in [("{victim_p}", false), ("{own_p}", true)] {
        let mut x = route(
            "GET",
            &format!("/tagd/v1/resources?project_id={p}"),
            None,
            Own,
        )
        .reads()
        .domain_wide();
        x.twin = twin;
        r.push(x);
    }

    // TMS writes.
    per_project(
        &mut r,
        route(
            "POST",
            "/v1.0/resource-tags/batch-create",
            Some(json!({"project_id": "{p}", "resources": all_regional, "tags": create_tags})),
            Own,
        ),
    );
    per_project(
        &mut r,
        route(
            "POST",
            "/v1.0/resource-tags/batch-delete",
            Some(json!({"project_id": "{p}", "resources": all_regional, "tags": delete_tags})),
            Own,
        ),
    );
    let cdn = json!([{"resource_id": "{cdn}", "resource_type": "cdn"}]);
    r.push(
        route(
            "POST",
            "/v1.0/resource-tags/batch-create",
            Some(json!({"resources": cdn, "tags": create_tags})),
            Own,
        )
        .domain_wide(),
    );
    r.push(
        route(
            "POST",
            "/v1.0/resource-tags/batch-delete",
            Some(json!({"resources": cdn, "tags": delete_tags})),
            Own,
        )
        .domain_wide(),
    );
    r.push(
        route(
            "POST",
            "/v1.0/predefine_tags/action",
            Some(json!({"action": "create", "tags": [{"key": "{pk1}", "value": "pwned"}]})),
            Own,
        )
        .domain_wide(),
    );
    r.push(
        route(
            "POST",
            "/v1.0/predefine_tags/action",
            Some(json!({"action": "delete", "tags": [{"key": "{pk1}", "value": "{pv1}"}]})),
            Own,
        )
        .domain_wide(),
    );
    r.push(
        route(
            "PUT",
            "/v1.0/predefine_tags",
            Some(json!({"old_tag": {"key": "{pk2}", "value": "{pv2}"}, "new_tag": {"key": "{pk2}", "value": "pwned"}})),
            Own,
        )
        .domain_wide(),
    );

    // Per-service writes.
    let one_tag = json!({"tag": {"key": "{ka}", "value": "pwned"}});
    let create = json!({"action": "create", "tags": create_tags});
    let delete = json!({"action": "delete", "tags": delete_tags});
    for (method, target, body) in [
        (
            "POST",
            "/v2/{p}/desktops/batch-tags",
            Some(json!({"desktops": [{"desktop_id": "{desktop}", "tags": create_tags}]})),
        ),
        (
            "DELETE",
            "/v2/{p}/desktops/batch-tags",
            Some(json!({"desktops": [{"desktop_id": "{desktop}", "tags": delete_tags}]})),
        ),
        (
            "POST",
            "/v2/{p}/desktops/{desktop}/tags/action",
            Some(create.clone()),
        ),
        (
            "POST",
            "/v2/{p}/desktops/{desktop}/tags/action",
            Some(delete.clone()),
        ),
        (
            "POST",
            "/v2/{p}/desktops/{desktop}/tags",
            Some(one_tag.clone()),
        ),
        ("DELETE", "/v2/{p}/desktops/{desktop}/tags/{kb}", None),
        ("DELETE", "/v2/{p}/desktops/{desktop}/tags/action", None),
        (
            "POST",
            "/v1/{p}/fabric-workspace/{fabric}/tags/create",
            Some(json!({"tags": create_tags})),
        ),
        (
            "POST",
            "/v1/{p}/fabric-workspace/{fabric}/tags/delete",
            Some(json!({"tags": [{"key": "{kb}"}]})),
        ),
        (
            "POST",
            "/v3/{p}/instances/{rds}/tags/action",
            Some(create.clone()),
        ),
        (
            "POST",
            "/v3/{p}/instances/{rds}/tags/action",
            Some(json!({"action": "delete", "tags": [{"key": "{kb}"}]})),
        ),
        (
            "POST",
            "/v2/{p}/stream/{dis}/tags/action",
            Some(create.clone()),
        ),
        (
            "POST",
            "/v2/{p}/stream/{dis}/tags/action",
            Some(delete.clone()),
        ),
        ("POST", "/v2/{p}/stream/{dis}/tags", Some(one_tag.clone())),
        ("DELETE", "/v2/{p}/stream/{dis}/tags/{kb}", None),
        ("DELETE", "/v2/{p}/stream/{dis}/tags/action", None),
    ] {
        per_project(&mut r, route(method, target, body, Own));
    }

    // IAM writes.
    r.push(
        route(
            "POST",
            "/v3/auth/tokens?nocatalog=true",
            Some(
                json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "{own_token}"}},
                "scope": {"project": {"id": "{victim_p}"}}}}),
            ),
            Class::Victim,
        )
        .exchange(),
    );
    r.push(route(
        "POST",
        "/v3.0/OS-CREDENTIAL/securitytokens",
        Some(json!({"auth": {"identity": {"methods": ["token"]}}})),
        Own,
    ));
    r.push(
        route(
            "POST",
            "/v3.0/OS-CREDENTIAL/credentials",
            Some(json!({"credential": {"user_id": "{uid}", "description": "pwned"}})),
            Class::Victim,
        )
        .domain_wide(),
    );
    r.push(
        route(
            "PUT",
            "/v3.0/OS-CREDENTIAL/credentials/{ak}",
            Some(json!({"credential": {"status": "inactive", "description": "pwned"}})),
            Class::Victim,
        )
        .domain_wide(),
    );

    // Admin writes: a rename, then removal.
    per_project(
        &mut r,
        route(
            "POST",
            "/tagd/v1/resources",
            Some(json!({"resources": [{"project_id": "{p}", "resource_type": "disk", "resource_id": "{disk}", "name": "pwned"}]})),
            Own,
        )
        .domain_wide(),
    );
    per_project(
        &mut r,
        route(
            "POST",
            "/tagd/v1/resources/delete",
            Some(json!({"resources": [{"project_id": "{p}", "resource_type": "ecs", "resource_id": "{ecs}"}]})),
            Own,
        )
        .domain_wide(),
    );

    // Last: the victim's token revoked and its access key deleted.
    r.push(route("DELETE", "/v3/auth/tokens", None, Class::Victim).subject());
    r.push(
        route(
            "DELETE",
            "/v3.0/OS-CREDENTIAL/credentials/{ak}",
            None,
            Class::Victim,
        )
        .domain_wide(),
    );
    r
}

/// The placeholder of a resource type's id.
fn short(resource_type: &str) -> &'static str {
    match resource_type {
        "disk" => "disk",
        "ecs" => "ecs",
        "workspace-desktop" => "desktop",
        "fabric-workspace" => "fabric",
        "rds" => "rds",
        "dis" => "dis",
        "cdn" => "cdn",
        other => panic!("no placeholder for {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// The callers

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Live, the victim's domain, another project.
    OtherProject,
    /// Live, another domain.
    OtherDomain,
    /// One of the victim's own credentials, dead.
    Dead,
}

struct Caller {
    name: &'static str,
    /// The user behind the credential: what one of a user's credentials sent, all of
    /// them know (an attacker may tag its own resource with a victim's id and key).
    who: &'static str,
    kind: Kind,
    auth: Auth,
    own_project: String,
}

fn fill(template: &str, v: &Victim, own_project: &str, own_token: &str) -> String {
    let mut s = template
        .replace("{victim_p}", &v.project)
        .replace("{own_p}", own_project)
        .replace("{ka}", &v.ka)
        .replace("{kb}", &v.kb)
        .replace("{pk1}", &v.predefined[0].0)
        .replace("{pv1}", &v.predefined[0].1)
        .replace("{pk2}", &v.predefined[1].0)
        .replace("{pv2}", &v.predefined[1].1)
        .replace("{uid}", &v.keys_user_id)
        .replace("{ak}", &v.target_key)
        .replace("{own_token}", own_token);
    for t in REGIONAL.iter().chain(["cdn"].iter()) {
        s = s.replace(&format!("{{{}}}", short(t)), &v.ids[t]);
    }
    s
}

/// At most 300 characters of a body, for messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// Sends one route as `auth`; the request's text (for the leak check) and the reply.
async fn call(
    api: &Api,
    route: &Route,
    v: &Victim,
    auth: &Auth,
    own_project: &str,
) -> (String, Reply) {
    let own_token = match auth {
        Auth::Token(t) => t.as_str(),
        Auth::Keys { .. } => "",
    };
    let target = fill(&route.target, v, own_project, own_token);
    let body = route
        .body
        .as_deref()
        .map(|b| fill(b, v, own_project, own_token));
    let subject = [("X-Subject-Token", v.subject.as_str())];
    let extra: &[(&str, &str)] = if route.subject { &subject } else { &[] };
    let reply = api
        .send(Some(auth), route.method, &target, body.as_deref(), extra)
        .await;
    let mut sent = format!("{target}\n{}", body.unwrap_or_default());
    for (_, value) in extra {
        sent.push('\n');
        sent.push_str(value);
    }
    match auth {
        Auth::Token(t) => sent.push_str(t),
        Auth::Keys { access, .. } => sent.push_str(access),
    }
    (sent, reply)
}

// ---------------------------------------------------------------------------------------
// What the victim holds

/// The victim's data as the victim reads it through every dialect, with the
/// timestamps-free parts of each answer.
async fn victim_view(api: &Api, v: &Victim) -> BTreeMap<String, String> {
    let p = &v.project;
    let mut reads: Vec<(String, &Auth)> = Vec::new();
    for t in REGIONAL {
        reads.push((
            format!(
                "/v2.0/resources/{}/tags?project_id={p}&resource_type={t}",
                v.ids[t]
            ),
            &v.project_token,
        ));
    }
    reads.push((
        format!("/v2.0/resources/{}/tags?resource_type=cdn", v.ids["cdn"]),
        &v.domain_token,
    ));
    for target in [
        format!("/v2/{p}/desktops/{}/tags", v.ids["workspace-desktop"]),
        format!(
            "/v1/{p}/fabric-workspace/{}/tags",
            v.ids["fabric-workspace"]
        ),
        format!("/v3/{p}/instances/{}/tags", v.ids["rds"]),
        format!("/v2/{p}/stream/{}/tags", v.ids["dis"]),
        "/tagd/v1/resources".to_owned(),
        "/v1.0/predefine_tags?limit=1000".to_owned(),
        format!("/v3.0/OS-CREDENTIAL/credentials?user_id={}", v.keys_user_id),
        "/v3.0/OS-CREDENTIAL/credentials".to_owned(),
    ] {
        reads.push((target, &v.domain_token));
    }
    let mut view = BTreeMap::new();
    for (target, auth) in reads {
        // No assertion on the status: a breach may have removed what is read, and the
        // comparison reports it.
        let r = api.get(auth, &target).await;
        let mut body = r.body;
        // Only the victim's own projects: an attacker of its domain may register
        // resources in its own project.
        if let Some(list) = body["resources"].as_array_mut() {
            list.retain(|x| x["project_id"] == json!(v.project) || x["project_id"] == json!(""));
        }
        // Predefined tags: key and value (a refreshed time is no change of data).
        if let Some(list) = body["tags"].as_array_mut() {
            for t in list {
                if let Some(o) = t.as_object_mut() {
                    o.remove("update_time");
                }
            }
        }
        view.insert(target, format!("{} {body}", r.status));
    }
    let r = api
        .send(
            Some(&v.domain_token),
            "GET",
            "/v3/auth/tokens",
            None,
            &[("X-Subject-Token", &v.subject)],
        )
        .await;
    view.insert("subject token".into(), r.status.to_string());
    view
}

/// Every row of the victim's straight from the store: its resources (project and
/// global), tags, system tags and predefined tags, and the access keys and tokens of
/// its administrator and key user.
fn store_rows(db: &Path, v: &Victim, users: &[&str]) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let users = users
        .iter()
        .map(|u| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(",");
    let mut rows = Vec::new();
    for sql in [
        format!("SELECT rid || '|' || project_id || '|' || resource_type || '|' || resource_id || '|' || name FROM resources WHERE domain_id = '{0}' AND project_id IN ('{1}', '') ORDER BY rid", v.domain_id, v.project),
        format!("SELECT t.rid || '|' || t.key || '|' || t.value FROM tags t JOIN resources r ON r.rid = t.rid WHERE r.domain_id = '{0}' AND r.project_id IN ('{1}', '') ORDER BY 1", v.domain_id, v.project),
        format!("SELECT t.rid || '|' || t.key || '|' || t.value FROM sys_tags t JOIN resources r ON r.rid = t.rid WHERE r.domain_id = '{0}' AND r.project_id IN ('{1}', '') ORDER BY 1", v.domain_id, v.project),
        format!("SELECT key || '|' || value FROM predefined_tags WHERE domain_id = '{}' ORDER BY 1", v.domain_id),
        format!("SELECT access || '|' || status || '|' || description || '|' || COALESCE(expires_at, '') FROM access_keys WHERE user_id IN ({users}) AND expires_at IS NULL ORDER BY 1"),
        format!("SELECT token_hash || '|' || revoked || '|' || expires_at FROM tokens WHERE user_id IN ({users}) AND revoked = 0 AND expires_at > strftime('%s', 'now') + 600 ORDER BY 1"),
    ] {
        let mut stmt = conn.prepare(&sql).expect("prepare");
        let found = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query");
        for row in found {
            rows.push(row.expect("row"));
        }
        rows.push("--".into());
    }
    rows
}

// ---------------------------------------------------------------------------------------
// The matrix

/// Runs every route as every caller; the breaches found, and the statuses seen by each
/// caller and class of route.
async fn attack(
    api: &Api,
    v: &Victim,
    callers: &[Caller],
    routes: &[Route],
    stats: &mut BTreeMap<String, BTreeMap<u16, usize>>,
) -> (Vec<String>, usize) {
    let (mut breaches, mut sent) = (Vec::new(), 0);
    let secrets = v.secrets();
    let predefined = v.predefined_secrets();
    let mut known: BTreeMap<&str, String> = BTreeMap::new();
    for c in callers {
        let is_token = matches!(c.auth, Auth::Token(_));
        let mut forbidden: Vec<&String> = secrets.iter().collect();
        if c.kind != Kind::OtherProject {
            forbidden.extend(predefined.iter());
        }
        if c.kind == Kind::OtherDomain {
            forbidden.push(&v.domain_id);
        }
        for route in routes {
            let same_domain = c.kind != Kind::OtherDomain;
            if (route.exchange && !is_token)
                || (route.subject && same_domain && c.kind != Kind::Dead)
            {
                continue;
            }
            let (request, r) = call(api, route, v, &c.auth, &c.own_project).await;
            sent += 1;
            let request = {
                let k = known.entry(c.who).or_default();
                k.push_str(&request);
                k.clone()
            };
            let what = format!(
                "{} ({:?}) {} {}",
                c.name,
                c.kind,
                route.method,
                fill(&route.target, v, &c.own_project, "<own token>")
            );
            *stats
                .entry(format!("{:<28} {:?}", c.name, route.class))
                .or_default()
                .entry(r.status)
                .or_default() += 1;
            let body = clip(&r.body.to_string());
            if r.status >= 500 {
                breaches.push(format!("{what}: {} {body}", r.status));
            }
            let two = (200..300).contains(&r.status);
            match (c.kind, route.class) {
                (_, Class::Public) => {}
                (Kind::Dead, _) if r.status != 401 => {
                    breaches.push(format!("{what}: a dead credential got {} {body}", r.status));
                }
                (_, Class::Victim) if two => {
                    breaches.push(format!("{what}: {} on the victim's data: {body}", r.status));
                }
                _ => {}
            }
            let read: Vec<&str> = forbidden
                .iter()
                .filter(|s| r.text.contains(s.as_str()) && !request.contains(s.as_str()))
                .map(|s| s.as_str())
                .collect();
            if !read.is_empty() {
                breaches.push(format!("{what}: {} read {read:?}: {body}", r.status));
            }
        }
    }
    (breaches, sent)
}

/// The positive control: the same requests as the victim (its project token, domain
/// token and permanent access key) succeed, and its reads show its data. The victim's
/// data is put back before each credential's pass, since the control writes over it.
async fn control(api: &Api, v: &mut Victim, routes: &[Route]) -> (Vec<String>, usize) {
    let (mut failures, mut sent) = (Vec::new(), 0);
    let credentials = [
        ("victim project token", v.project_token.clone(), false),
        ("victim domain token", v.domain_token.clone(), true),
        ("victim access key", v.keys.clone(), true),
    ];
    for (name, auth, domain_wide) in credentials {
        seed(api, v).await;
        let mut secrets = v.secrets();
        secrets.extend(v.predefined_secrets());
        for route in routes {
            let is_token = matches!(auth, Auth::Token(_));
            if route.twin
                || route.class == Class::Public
                || (route.domain_wide && !domain_wide)
                || (route.exchange && !is_token)
            {
                continue;
            }
            let (request, r) = call(api, route, v, &auth, &v.project.clone()).await;
            sent += 1;
            let what = format!(
                "{name} {} {}",
                route.method,
                fill(&route.target, v, &v.project, "<own token>")
            );
            if !(200..300).contains(&r.status) {
                failures.push(format!("{what}: {} {}", r.status, r.text));
            } else if route.reads
                && !secrets
                    .iter()
                    .any(|s| r.text.contains(s.as_str()) && !request.contains(s.as_str()))
            {
                failures.push(format!(
                    "{what}: shows none of the victim's data: {}",
                    r.text
                ));
            }
        }
    }
    (failures, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_other_tenant_and_no_dead_credential_reaches_the_victim() {
    let started = Instant::now();
    let tempdir = tempfile::tempdir().expect("tempdir");
    let dir = tempdir.path();

    // Phase 0: a first run whose tokens live 2 s, for an expired token and an expired
    // temporary key (a temporary key never outlives the token it is made from).
    let port = free_port();
    let mut tagd = spawn_with(dir, port, &["--token-lifetime-secs", "2"], &[]).await;
    let api = Api::new(port);
    let domain_name = credential(dir, "domain_name");
    let project = credential(dir, "project_id");
    let admin = (credential(dir, "user_name"), credential(dir, "password"));
    let (expired, _) = api
        .login(
            &admin.0,
            &domain_name,
            &admin.1,
            json!({"project": {"id": project}}),
        )
        .await;
    let expired_key = api.temporary_key(&expired).await;
    // Both die within 2 s (whole seconds): the matrix starts no sooner than 3 s from now.
    let expiry = Instant::now() + Duration::from_secs(3);
    sigterm(&tagd);
    tagd.wait().await.expect("tagd stops");

    // Phase 1: the other identities, through the admin CLI while no server runs.
    let a = domain_name.as_str();
    let a2 = first_field(&cli(dir, &["project", "create", "--domain", a, "iso-a2"], None).await);
    let a3 = first_field(&cli(dir, &["project", "create", "--domain", a, "iso-a3"], None).await);
    cli(dir, &["domain", "create", "iso-evil-b"], None).await;
    cli(dir, &["domain", "create", "iso-doomed-c"], None).await;
    let b1 = first_field(
        &cli(
            dir,
            &["project", "create", "--domain", "iso-evil-b", "iso-b1"],
            None,
        )
        .await,
    );
    // The attackers are administrators of their domains: the strongest attackers, and
    // the only ones the admin API does not refuse for that reason alone.
    new_user(dir, a, "mallory-a2", true).await;
    new_user(dir, "iso-evil-b", "mallory-b", true).await;
    new_user(dir, "iso-doomed-c", "doomed-c", true).await;
    let keys_user_id = new_user(dir, a, "victim-keys", false).await;
    let ops_user_id = new_user(dir, a, "victim-ops", false).await;
    let off_user_id = new_user(dir, a, "victim-off", false).await;

    // Phase 2: the server of the matrix. With the credential cache off, the CLI's and
    // the store's changes take effect at once.
    let port = free_port();
    let _tagd = spawn_with(dir, port, &["--credential-cache-ms", "0"], &[]).await;
    let api = Api::new(port);
    let (domain_token, body) = api
        .login(&admin.0, a, &admin.1, json!({"domain": {"name": a}}))
        .await;
    let domain_id = field(&body["token"]["domain"]["id"]);
    let admin_user_id = field(&body["token"]["user"]["id"]);
    let domain_token = Auth::Token(domain_token);
    let scoped = |p: &str| json!({"project": {"id": p}});
    let project_token = Auth::Token(api.login(&admin.0, a, &admin.1, scoped(&project)).await.0);
    let keys = api.permanent_key(&domain_token, &admin_user_id).await;
    let salt = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let mut ids = BTreeMap::new();
    let mut names = BTreeMap::new();
    for t in REGIONAL.iter().chain(["cdn"].iter()) {
        ids.insert(*t, format!("victim-{}-{salt}", short(t)));
        names.insert(*t, format!("vname-{}-{salt}", short(t)));
    }
    let mut v = Victim {
        domain_id: domain_id.clone(),
        domain_name: domain_name.clone(),
        project: project.clone(),
        ids,
        names,
        ka: format!("ska-{salt}"),
        kb: format!("skb-{salt}"),
        predefined: [
            (format!("spk1-{salt}"), format!("spv1-{salt}")),
            (format!("spk2-{salt}"), format!("spv2-{salt}")),
        ],
        salt: salt.clone(),
        admin: admin.clone(),
        keys_user_id,
        target_key: String::new(),
        subject: String::new(),
        domain_token: domain_token.clone(),
        project_token: project_token.clone(),
        keys: keys.clone(),
    };
    seed(&api, &mut v).await;

    // The attackers.
    let (a2_token, _) = api.login("mallory-a2", a, PASSWORD, scoped(&a2)).await;
    let a2_key = api.temporary_key(&a2_token).await;
    let (b_domain, body) = api
        .login(
            "mallory-b",
            "iso-evil-b",
            PASSWORD,
            json!({"domain": {"name": "iso-evil-b"}}),
        )
        .await;
    let b_user = field(&body["token"]["user"]["id"]);
    let (b_project, _) = api
        .login("mallory-b", "iso-evil-b", PASSWORD, scoped(&b1))
        .await;
    let b_key = api
        .permanent_key(&Auth::Token(b_domain.clone()), &b_user)
        .await;

    // The victim's dead credentials.
    let (revoked, _) = api.login(&admin.0, a, &admin.1, scoped(&project)).await;
    api.revoke(&domain_token, &revoked).await;
    let (source, _) = api.login(&admin.0, a, &admin.1, scoped(&project)).await;
    let orphan_key = api.temporary_key(&source).await;
    api.revoke(&domain_token, &source).await;
    let disabled_key = api.permanent_key(&domain_token, &admin_user_id).await;
    let r = api
        .json(
            &domain_token,
            "PUT",
            &format!(
                "/v3.0/OS-CREDENTIAL/credentials/{}",
                access_of(&disabled_key)
            ),
            &json!({"credential": {"status": "inactive"}}),
        )
        .await;
    assert_eq!(r.status, 200, "disable: {}", r.text);
    let (ops_token, _) = api.login("victim-ops", a, PASSWORD, scoped(&project)).await;
    let deleted_key = api.permanent_key(&domain_token, &ops_user_id).await;
    let r = api
        .send(
            Some(&domain_token),
            "DELETE",
            &format!(
                "/v3.0/OS-CREDENTIAL/credentials/{}",
                access_of(&deleted_key)
            ),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "delete key: {}", r.text);
    let ops_key = api.permanent_key(&domain_token, &ops_user_id).await;
    cli(dir, &["user", "delete", "--domain", a, "victim-ops"], None).await;
    let (off_token, _) = api.login("victim-off", a, PASSWORD, scoped(&project)).await;
    let off_key = api.permanent_key(&domain_token, &off_user_id).await;
    // tagd has no command or API that disables a user, but its store has the flag and
    // every credential check reads it: flip it as an operator (or a future command)
    // would.
    {
        let conn = rusqlite::Connection::open(dir.join("tagd.db")).expect("open the store");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let n = conn
            .execute("UPDATE users SET enabled = 0 WHERE id = ?1", [&off_user_id])
            .expect("disable the user");
        assert_eq!(n, 1);
    }
    let (a3_token, _) = api.login(&admin.0, a, &admin.1, scoped(&a3)).await;
    cli(dir, &["project", "delete", "--domain", a, "iso-a3"], None).await;
    let (c_token, body) = api
        .login(
            "doomed-c",
            "iso-doomed-c",
            PASSWORD,
            json!({"domain": {"name": "iso-doomed-c"}}),
        )
        .await;
    let c_key = api
        .permanent_key(
            &Auth::Token(c_token.clone()),
            &field(&body["token"]["user"]["id"]),
        )
        .await;
    cli(dir, &["domain", "delete", "iso-doomed-c"], None).await;

    let live = |name, who, kind, auth, own: &str| Caller {
        name,
        who,
        kind,
        auth,
        own_project: own.to_owned(),
    };
    let dead = |name, auth| Caller {
        name,
        who: name,
        kind: Kind::Dead,
        auth,
        own_project: project.clone(),
    };
    let callers = vec![
        dead("expired token", Auth::Token(expired)),
        dead("expired temporary key", expired_key),
        dead("revoked token", Auth::Token(revoked)),
        dead("temporary key, token revoked", orphan_key),
        dead("disabled access key", disabled_key),
        dead("deleted access key", deleted_key),
        dead("deleted user's token", Auth::Token(ops_token)),
        dead("deleted user's access key", ops_key),
        dead("disabled user's token", Auth::Token(off_token)),
        dead("disabled user's access key", off_key),
        dead("deleted project's token", Auth::Token(a3_token)),
        dead("deleted domain's token", Auth::Token(c_token)),
        dead("deleted domain's access key", c_key),
        live(
            "other domain, domain token",
            "mallory-b",
            Kind::OtherDomain,
            Auth::Token(b_domain),
            &b1,
        ),
        live(
            "other domain, project token",
            "mallory-b",
            Kind::OtherDomain,
            Auth::Token(b_project),
            &b1,
        ),
        live(
            "other domain, access key",
            "mallory-b",
            Kind::OtherDomain,
            b_key,
            &b1,
        ),
        live(
            "other project, token",
            "mallory-a2",
            Kind::OtherProject,
            Auth::Token(a2_token),
            &a2,
        ),
        live(
            "other project, temporary key",
            "mallory-a2",
            Kind::OtherProject,
            a2_key,
            &a2,
        ),
    ];

    tokio::time::sleep_until(expiry.into()).await;
    let routes = routes();
    let db = dir.join("tagd.db");
    let victim_users = [admin_user_id.as_str(), v.keys_user_id.as_str()];
    let view_before = victim_view(&api, &v).await;
    let rows_before = store_rows(&db, &v, &victim_users);
    let mut stats = BTreeMap::new();
    let (mut breaches, attacks) = attack(&api, &v, &callers, &routes, &mut stats).await;
    let view_after = victim_view(&api, &v).await;
    let rows_after = store_rows(&db, &v, &victim_users);
    for (target, before) in &view_before {
        let after = &view_after[target];
        if before != after {
            breaches.push(format!(
                "the victim's {target} changed:\n  before {before}\n  after  {after}"
            ));
        }
    }
    if rows_before != rows_after {
        let gone: Vec<_> = rows_before
            .iter()
            .filter(|r| !rows_after.contains(r))
            .collect();
        let new: Vec<_> = rows_after
            .iter()
            .filter(|r| !rows_before.contains(r))
            .collect();
        breaches.push(format!(
            "the victim's rows changed: gone {gone:?}, new {new:?}"
        ));
    }
    let (failures, controls) = control(&api, &mut v, &routes).await;

    let mut table = String::new();
    for (who, statuses) in &stats {
        table.push_str(&format!("  {who:<40} {statuses:?}\n"));
    }
    eprintln!(
        "isolation: {} routes, {} callers, {attacks} attacks and {controls} control requests in {:.1?}\n{table}",
        routes.len(),
        callers.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "the positive control failed, so the matrix proves nothing:\n{}",
        failures.join("\n")
    );
    assert!(
        breaches.is_empty(),
        "{} isolation breaches:\n{}",
        breaches.len(),
        breaches.join("\n")
    );
}
