//! The dashboard's session and its defences, in-process: a form login sets an HttpOnly,
//! SameSite cookie (not Secure over plain HTTP), a wrong password or a login posted from
//! another site sets none, a CLI token is no session, tenant values are escaped under a
//! Content-Security-Policy without inline script, and logging out ends the session. Behind a
//! trusted proxy that says HTTPS the cookie is Secure; a client saying the same for itself is
//! not believed.

use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};

use crate::util::{ADMIN, ADMIN_PASSWORD, TestGitd};

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the login form from `origin`; the answer's status and `Set-Cookie`, if any.
async fn log_in(gitd: &TestGitd, origin: &str, password: &str) -> (StatusCode, Option<String>) {
    log_in_through(&client(), gitd, origin, None, password).await
}

/// Posts the login form with `client`, from `origin`, with `X-Forwarded-Proto` if given.
async fn log_in_through(
    client: &Client,
    gitd: &TestGitd,
    origin: &str,
    forwarded_proto: Option<&str>,
    password: &str,
) -> (StatusCode, Option<String>) {
    let mut request = client
        .post(format!("{}/login", gitd.url))
        .header(ORIGIN, origin);
    if let Some(proto) = forwarded_proto {
        request = request.header("X-Forwarded-Proto", proto);
    }
    let answer = request
        .form(&[("username", ADMIN), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = answer
        .headers()
        .get(SET_COOKIE)
        .map(|value| value.to_str().unwrap().to_owned());
    (answer.status(), cookie)
}

/// `paas_session=…`, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn get(gitd: &TestGitd, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", gitd.url))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_form_login_is_a_cookie_session_that_logout_ends() {
    let gitd = TestGitd::start().await;
    let own = gitd.url.clone();

    let (status, cookie) = log_in(&gitd, &own, "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    let (status, cookie) = log_in(&gitd, "http://evil.example", ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a login posted from another site"
    );
    assert!(cookie.is_none());

    let (status, set_cookie) = log_in(&gitd, &own, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = set_cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = cookie_pair(&set_cookie);
    assert_eq!(get(&gitd, "/", &cookie).await.status(), StatusCode::OK);

    let cli_token = format!("paas_session={}", gitd.token);
    let answer = get(&gitd, "/", &cli_token).await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "a CLI token is no session"
    );
    assert_eq!(answer.headers()[LOCATION], "/login");

    // The logout form needs the session's secret, from the page.
    let page = get(&gitd, "/", &cookie).await.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let logout = |secret: String| {
        client()
            .post(format!("{}/logout", gitd.url))
            .header("Cookie", &cookie)
            .header(ORIGIN, &own)
            .form(&[("csrf", secret)])
            .send()
    };
    assert_eq!(
        logout("not-it".into()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(&gitd, "/", &cookie).await.status(), StatusCode::OK);
    assert_eq!(logout(csrf).await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get(&gitd, "/", &cookie).await.status(),
        StatusCode::SEE_OTHER
    );
}

/// A client whose connections come from `address` (any of 127.0.0.0/8 reaches loopback).
fn client_from(address: &str) -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .local_address(Some(address.parse().unwrap()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_cookie_is_secure_over_https_said_by_a_trusted_proxy_only() {
    let proxy = "127.0.0.1";
    let gitd = TestGitd::start_with(|config| {
        config.http.trusted_proxies = vec![proxy.parse().unwrap()];
    })
    .await;
    let host = gitd.url.strip_prefix("http://").unwrap().to_owned();
    let https_origin = format!("https://{host}");

    let (status, set_cookie) = log_in_through(
        &client_from(proxy),
        &gitd,
        &https_origin,
        Some("https"),
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = set_cookie.unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }

    // A client of its own, not the proxy, saying the same: gitd serves it plain HTTP, so a
    // form from the HTTPS origin is from elsewhere, and the cookie of a plain one not Secure.
    let client = client_from("127.0.0.2");
    let (status, set_cookie) =
        log_in_through(&client, &gitd, &https_origin, Some("https"), ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(set_cookie.is_none());
    let (status, set_cookie) = log_in_through(
        &client,
        &gitd,
        &gitd.url.clone(),
        Some("https"),
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = set_cookie.unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
}

#[tokio::test]
async fn tenant_values_are_escaped_under_a_policy_without_inline_script() {
    let gitd = TestGitd::start().await;
    gitd.create_app("hostile").await;
    let hostile = "<script>alert(1)</script>\"'&";
    let (status, body) = gitd
        .set_config("hostile", serde_json::json!({ "EVIL": hostile }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, cookie) = log_in(&gitd, &gitd.url.clone(), ADMIN_PASSWORD).await;
    let cookie = cookie_pair(&cookie.unwrap());

    let hidden = get(&gitd, "/apps/hostile", &cookie).await;
    let policy = hidden.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let hidden = hidden.text().await.unwrap();
    assert!(
        !hidden.contains("alert(1)"),
        "values stay hidden until asked: {hidden}"
    );

    let revealed = get(&gitd, "/apps/hostile?reveal=EVIL", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        revealed.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"),
        "{revealed}"
    );
    assert!(!revealed.contains("<script>alert"), "{revealed}");
}
