//! Connect links end to end: the app asks for a link for one end user, and
//! the end user — with no admin token — connects on the hosted page. In
//! headless Chromium against a fake OAuth provider with a consent page:
//! open, approve, land on "connected"; a reused link, an expired link, a
//! link opened in a second browser and a flow continued in a second
//! browser are refused. An API-key service's form seals the key at once.

use std::time::Duration;

use junction_tests::browser::Browser;
use junction_tests::host::{TestHost, set_cookie};
use junction_tests::oauth::{FakeProvider, service_json};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn link_for(host: &TestHost, body: Value) -> Value {
    let issued = host.post("/v1/connect-links", &body).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    issued.json
}

async fn oauth_host() -> (TestHost, FakeProvider) {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    provider.lock().consent_page = true;
    host.create("/v1/services", &service_json("fake", &provider, json!({})))
        .await;
    (host, provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_user_connects_through_the_hosted_page_once() {
    let (host, provider) = oauth_host().await;
    let link = link_for(
        &host,
        json!({"end_user": "ana", "service": "fake", "app": "Acme CRM"}),
    )
    .await;
    let url = link["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&format!("{}/connect/", host.url)), "{url}");
    assert_eq!(link["link_name"], "fake");
    assert!(link["expires_at_ms"].as_u64().expect("expiry") > 0);

    let mut browser = Browser::start(&host.url).await;
    browser.open(&url).await;
    browser.wait_for_text("#app", "Acme CRM").await;
    browser
        .wait_for_text("#title", "Connect your fake account")
        .await;
    let scopes = browser.text("#connect-form").await;
    assert!(
        scopes.contains("read") && scopes.contains("write"),
        "{scopes}"
    );
    browser.click("#connect").await;
    // At the provider: its consent page, then back to the hosted page.
    browser.wait_for_text("h1", "Fake Provider").await;
    browser.click("#approve").await;
    browser.wait_for_path("/oauth/callback").await;
    browser.wait_for_text("#title", "Connected").await;
    let message = browser.text("#message").await;
    assert!(message.contains("connected to Acme CRM"), "{message}");

    let connection = host.get("/v1/connections/fake?end_user=ana").await;
    assert_eq!(
        connection.json["status"], "connected",
        "{}",
        connection.text
    );
    assert_eq!(connection.json["end_user"], "ana");
    let token = provider
        .lock()
        .access_tokens
        .first()
        .cloned()
        .expect("issued");
    assert!(
        browser.seen.iter().all(|page| !page.contains(&token)),
        "no page shows the token"
    );

    // The link worked once.
    browser.open(&url).await;
    browser.wait_for_text("#title", "already used").await;
    let mut other = Browser::start(&host.url).await;
    other.open(&url).await;
    other.wait_for_text("#title", "already used").await;
    other.close().await;
    browser.close().await;

    // Without JavaScript or a browser: a forged token is refused unread.
    let forged = reqwest::get(format!("{}/connect/bm90LWEtbGluaw", host.url))
        .await
        .expect("page");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    assert!(forged.text().await.expect("html").contains("not valid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_in_a_second_browser_or_past_its_time_is_refused() {
    let (host, provider) = oauth_host().await;
    let url = |link: &Value| link["url"].as_str().expect("url").to_owned();

    // Opened first in A: B is refused.
    let forwarded = url(&link_for(&host, json!({"end_user": "ana", "service": "fake"})).await);
    let mut a = Browser::start(&host.url).await;
    let mut b = Browser::start(&host.url).await;
    a.open(&forwarded).await;
    a.wait_for_text("#title", "Connect your fake account").await;
    b.open(&forwarded).await;
    b.wait_for_text("#title", "opened in another browser").await;

    // A goes to the provider; the authorize URL, intercepted and approved
    // in B, comes back to a callback that refuses it without redeeming
    // the code.
    a.click("#connect").await;
    a.wait_for_text("h1", "Fake Provider").await;
    let at_provider = a
        .client
        .current_url()
        .await
        .expect("provider url")
        .to_string();
    b.open(&at_provider).await;
    b.click("#approve").await;
    b.wait_for_path("/oauth/callback").await;
    b.wait_for_text("#title", "opened in another browser").await;
    assert!(
        provider.lock().token_requests.is_empty(),
        "the code was never redeemed"
    );
    let connection = host.get("/v1/connections/fake?end_user=ana").await;
    assert_eq!(
        connection.json["status"], "disconnected",
        "{}",
        connection.text
    );

    // Expired: refused with a page that says so.
    let short = url(&link_for(
        &host,
        json!({"end_user": "ben", "service": "fake", "expires_in": 1}),
    )
    .await);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.open(&short).await;
    a.wait_for_text("#title", "expired").await;
    a.close().await;
    b.close().await;
    assert_eq!(
        host.get("/v1/connections/fake?end_user=ben").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_sealed_straight_from_the_form() {
    const KEY: &str = "sk_live_end_user_secret_4471";
    let mut host = TestHost::start().await;
    host.create(
        "/v1/services",
        &json!({"name": "stripe-mock", "auth_type": "api-key", "base_url": "https://api.stripe.test"}),
    )
    .await;
    let link = link_for(&host, json!({"end_user": "ana", "service": "stripe-mock"})).await;
    assert_eq!(link["link_name"], "stripe_mock");
    let url = link["url"].as_str().expect("url").to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http.get(&url).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = set_cookie(&page, "junction_connect");
    let html = page.text().await.expect("html");
    assert!(html.contains("name=\"key\""), "{html}");

    // Without the browser's cookie (a cross-site form, another client) the
    // form is refused.
    let stranger = http
        .post(&url)
        .form(&[("key", KEY)])
        .send()
        .await
        .expect("post");
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
    let empty = http
        .post(&url)
        .header("cookie", &cookie)
        .form(&[("key", "")])
        .send()
        .await
        .expect("post");
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    let done = http
        .post(&url)
        .header("cookie", &cookie)
        .form(&[("key", KEY)])
        .send()
        .await
        .expect("post");
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.expect("html");
    assert!(html.contains("is connected"), "{html}");
    assert!(!html.contains(KEY));
    let connection = host.get("/v1/connections/stripe_mock?end_user=ana").await;
    assert_eq!(
        connection.json["status"], "connected",
        "{}",
        connection.text
    );
    assert_eq!(connection.json["has_secret"], true);
    let again = http
        .post(&url)
        .header("cookie", &cookie)
        .form(&[("key", "another")])
        .send()
        .await
        .expect("post");
    assert_eq!(again.status(), StatusCode::GONE, "a link works once");

    // Bad requests name the field.
    for (body, field) in [
        (
            json!({"end_user": "ana", "service": "stripe-mock", "expires_in": 14401}),
            "expires_in",
        ),
        (
            json!({"end_user": " ana", "service": "stripe-mock"}),
            "end_user",
        ),
        (
            json!({"end_user": "ana", "service": "stripe-mock", "link_name": "Bad"}),
            "link_name",
        ),
    ] {
        let refused = host.post("/v1/connect-links", &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
        assert_eq!(refused.field(), Some(field), "{}", refused.text);
    }
    let unknown = host
        .post(
            "/v1/connect-links",
            &json!({"end_user": "ana", "service": "nope"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    host.stop().await;
    let db = std::fs::read(host.dir.path().join("junction.redb")).expect("the store file");
    assert!(
        !db.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the key is sealed"
    );
}
