//! The IAM token endpoint and the project and domain lookups the SDKs make.

use serde_json::{json, Value};

use crate::TestServer;

#[tokio::test]
async fn password_tokens_are_issued_with_the_subject_header_and_body() {
    let s = TestServer::start().await;
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": s.creds.user_name, "password": s.creds.password, "domain": {"name": s.creds.domain_name}}}},
        "scope": {"project": {"id": s.creds.project_id}}}});
    let r = s.post("/v3/auth/tokens", None, &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("x-subject-token").is_some_and(|t| t.len() >= 32));
    let t = &r.body["token"];
    assert_eq!(t["project"]["id"], s.creds.project_id.as_str());
    assert_eq!(t["project"]["domain"]["id"], s.creds.domain_id.as_str());
    assert_eq!(t["user"]["name"], s.creds.user_name.as_str());
    assert_eq!(t["methods"], json!(["password"]));
    assert!(
        t["expires_at"].as_str().is_some_and(|e| e.ends_with('Z')),
        "{t}"
    );
    assert!(t["catalog"].as_array().is_some_and(|c| !c.is_empty()));

    let r = s.post("/v3/auth/tokens?nocatalog=true", None, &body).await;
    assert_eq!(r.status, 201);
    assert!(r.body["token"].get("catalog").is_none());

    // Domain scope by id.
    let r = s.post("/v3/auth/tokens?nocatalog", None, &json!({"auth": {"identity": body["auth"]["identity"], "scope": {"domain": {"id": s.creds.domain_id}}}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["token"]["domain"]["id"], s.creds.domain_id.as_str());
    assert!(r.body["token"].get("project").is_none());
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_look_alike() {
    let s = TestServer::start().await;
    for (user, password) in [
        (s.creds.user_name.as_str(), "wrong-password"),
        ("nobody", "whatever-password"),
    ] {
        let r = s
            .post(
                "/v3/auth/tokens",
                None,
                &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": s.creds.domain_name}}}}}}),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.body["error"]["code"], 401);
        assert_eq!(r.body["error_code"], "IAM.0002");
        assert!(r.body["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("user name or password")));
    }
    let r = s.post("/v3/auth/tokens", None, &json!({"auth": {}})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("identity")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_token_can_be_rescoped_validated_and_revoked() {
    let s = TestServer::start().await;
    let domain_token = s.domain_token().await;
    let r = s
        .post("/v3/auth/tokens", None, &json!({"auth": {"identity": {"methods": ["token"], "token": {"id": domain_token}},
            "scope": {"project": {"name": s.creds.project_name, "domain": {"name": s.creds.domain_name}}}}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let project_token = r.header("x-subject-token").expect("token");
    assert_eq!(
        r.body["token"]["project"]["id"],
        s.creds.project_id.as_str()
    );

    let check = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &domain_token)
        .header("X-Subject-Token", &project_token)
        .send()
        .await
        .expect("validate");
    assert_eq!(check.status(), 200);
    assert_eq!(check.headers()["x-subject-token"], project_token.as_str());

    let revoke = s
        .http
        .delete(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &domain_token)
        .header("X-Subject-Token", &project_token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 204);
    let r = s.get("/v1.0/tms/providers", Some(&project_token)).await;
    assert_eq!(r.status, 401);
    assert!(r.tms_msg().contains("revoked"));
    let again = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &domain_token)
        .header("X-Subject-Token", &project_token)
        .send()
        .await
        .expect("validate");
    assert_eq!(again.status(), 404);
    // The token that did the revoking still works.
    assert_eq!(
        s.get("/v1.0/tms/providers", Some(&domain_token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_token_cannot_be_scoped_outside_its_domain() {
    let s = TestServer::start().await;
    assert!(s
        .cli(&["domain", "create", "elsewhere"], None)
        .await
        .status
        .success());
    let out = s
        .cli(
            &["project", "create", "--domain", "elsewhere", "cn-west-9"],
            None,
        )
        .await;
    let foreign_project = String::from_utf8_lossy(&out.stdout)
        .split('\t')
        .next()
        .expect("id")
        .to_owned();
    let identity = json!({"methods": ["password"], "password": {"user": {
        "name": s.creds.user_name, "password": s.creds.password, "domain": {"name": s.creds.domain_name}}}});
    for scope in [
        json!({"project": {"id": foreign_project}}),
        json!({"domain": {"name": "elsewhere"}}),
        json!({"project": {"id": "no-such-project"}}),
    ] {
        let r = s
            .post(
                "/v3/auth/tokens",
                None,
                &json!({"auth": {"identity": identity, "scope": scope}}),
            )
            .await;
        assert_eq!(r.status, 401, "{scope}: {}", r.text);
    }
}

#[tokio::test]
async fn projects_and_domains_are_listed_for_the_caller() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let r = s
        .get(
            &format!("/v3/projects?name={}", s.creds.project_name),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let projects = r.body["projects"].as_array().expect("projects");
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["id"], s.creds.project_id.as_str());
    assert_eq!(projects[0]["domain_id"], s.creds.domain_id.as_str());
    let r = s.get("/v3/projects?name=mars-1", Some(&token)).await;
    assert_eq!(r.body["projects"], json!([]));
    let r = s.get("/v3/auth/domains", Some(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["domains"][0]["id"], s.creds.domain_id.as_str());
    let r = s.get("/v3/projects", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error_code"], "IAM.0002");
}

#[tokio::test]
async fn a_project_token_cannot_be_traded_for_a_wider_one() {
    let s = TestServer::start().await;
    let project = s.project_token().await;
    for scope in [
        json!({"domain": {"name": s.creds.domain_name}}),
        json!(null),
    ] {
        let mut auth = json!({"identity": {"methods": ["token"], "token": {"id": project}}});
        if !scope.is_null() {
            auth["scope"] = scope.clone();
        }
        let r = s
            .post("/v3/auth/tokens", None, &json!({ "auth": auth }))
            .await;
        assert_eq!(r.status, 401, "{scope}: {}", r.text);
    }
    // The same project is fine.
    let r = s
        .post(
            "/v3/auth/tokens",
            None,
            &json!({"auth": {"identity": {"methods": ["token"], "token": {"id": project}},
        "scope": {"project": {"id": s.creds.project_id}}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn exactly_one_login_method() {
    let s = TestServer::start().await;
    let password = json!({"user": {"name": s.creds.user_name, "password": s.creds.password, "domain": {"name": s.creds.domain_name}}});
    for methods in [json!([]), json!(["password", "token"]), json!(["totp"])] {
        let r = s
            .post(
                "/v3/auth/tokens",
                None,
                &json!({"auth": {"identity": {"methods": methods, "password": password}}}),
            )
            .await;
        assert_eq!(r.status, 400, "{methods}: {}", r.text);
        assert!(
            r.body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains("auth.identity.methods")),
            "{}",
            r.text
        );
    }
}

/// Password guessing stops after five wrong tries: the user is locked out (even the
/// right password is refused, with a 401 that says to wait), other users are not, and
/// a name that matches no user locks the same way, so a lockout reveals nothing.
#[tokio::test]
async fn repeated_wrong_passwords_lock_the_user_out() {
    let s = TestServer::start().await;
    let other = s
        .user_token(
            "bystander",
            json!({"domain": {"name": s.creds.domain_name}}),
        )
        .await;
    assert!(!other.is_empty());
    let attempt = |user: &str, password: &str| {
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": s.creds.domain_name}}}},
            "scope": {"domain": {"name": s.creds.domain_name}}}})
    };
    for i in 0..tagd::auth::lockout::MAX_FAILURES {
        let r = s
            .post(
                "/v3/auth/tokens",
                None,
                &attempt(&s.creds.user_name, &format!("guess-{i}")),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(r.body.to_string().contains("wrong"), "{}", r.text);
    }
    let r = s
        .post(
            "/v3/auth/tokens",
            None,
            &attempt(&s.creds.user_name, &s.creds.password),
        )
        .await;
    assert_eq!(
        r.status, 401,
        "the right password during the lockout: {}",
        r.text
    );
    assert!(r.body.to_string().contains("try again in"), "{}", r.text);

    // Another user of the same domain logs in as usual.
    s.token_for(
        "bystander",
        "a-long-password",
        json!({"domain": {"name": s.creds.domain_name}}),
    )
    .await;

    // An unknown name is locked out after as many tries, with the same answer.
    for i in 0..tagd::auth::lockout::MAX_FAILURES {
        let r = s
            .post(
                "/v3/auth/tokens",
                None,
                &attempt("nobody", &format!("guess-{i}")),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = s
        .post("/v3/auth/tokens", None, &attempt("nobody", "anything"))
        .await;
    assert!(r.body.to_string().contains("try again in"), "{}", r.text);
}

/// Names, ids and passwords longer than any that can exist are refused with 400 before
/// anything is looked up, hashed or remembered (the lockout keeps nothing for them);
/// at the limit they are ordinary wrong credentials.
#[tokio::test]
async fn overlong_login_fields_are_refused_before_any_lookup() {
    let s = TestServer::start().await;
    let domain = s.creds.domain_name.clone();
    let login = |user: Value| {
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}})
    };
    let huge = "u".repeat(1_000_000);
    let cases = [
        (
            json!({"name": "n".repeat(65), "password": "whatever-password", "domain": {"name": domain}}),
            "auth.identity.password.user.name",
        ),
        (
            json!({"name": huge, "password": "whatever-password", "domain": {"name": domain}}),
            "auth.identity.password.user.name",
        ),
        (
            json!({"name": "ü".repeat(65), "password": "whatever-password", "domain": {"name": domain}}),
            "auth.identity.password.user.name",
        ),
        (
            json!({"name": "admin", "password": "whatever-password", "domain": {"name": "d".repeat(65)}}),
            "auth.identity.password.user.domain",
        ),
        (
            json!({"id": "i".repeat(65), "password": "whatever-password"}),
            "auth.identity.password.user.id",
        ),
        (
            json!({"name": s.creds.user_name, "password": "p".repeat(129), "domain": {"name": domain}}),
            "auth.identity.password.user.password",
        ),
    ];
    for (user, field) in cases {
        let r = s.post("/v3/auth/tokens", None, &login(user)).await;
        assert_eq!(r.status, 400, "{field}: {}", &r.text[..r.text.len().min(300)]);
        assert!(
            r.text.contains(field) && r.text.len() < 2_000,
            "names {field}, without echoing the input: {}",
            &r.text[..r.text.len().min(300)]
        );
    }
    // At the limit: 64 characters (ü is two bytes) is a name that may exist.
    let r = s
        .post(
            "/v3/auth/tokens",
            None,
            &login(json!({"name": "ü".repeat(64), "password": "whatever-password", "domain": {"name": domain}})),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // None of the refused attempts counted against the real user.
    let token = s.domain_token().await;
    assert!(!token.is_empty());
}

/// A disabled user's right password gets the answer a wrong one gets: the endpoint
/// confirms no password of an account it would not let in.
#[tokio::test]
async fn a_disabled_users_right_password_looks_like_a_wrong_one() {
    let s = TestServer::start().await;
    let out = s
        .cli(&["user", "create", "dora"], Some("dora-password-1\n"))
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        s.execute_sql("UPDATE users SET enabled = FALSE WHERE name = 'dora'")
            .await,
        1
    );
    let attempt = |password: &'static str| {
        let s = &s;
        async move {
            let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "dora", "password": password, "domain": {"name": s.creds.domain_name}}}}}});
            let r = s.post("/v3/auth/tokens", None, &body).await;
            (r.status, r.body["error_code"].clone(), r.body["error_msg"].clone())
        }
    };
    let right = attempt("dora-password-1").await;
    let wrong = attempt("not-doras-password").await;
    assert_eq!(right.0, 401);
    assert_eq!(right, wrong, "right and wrong passwords of a disabled user differ");
}
