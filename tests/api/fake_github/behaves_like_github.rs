//! The fake itself behaves as GitHub does.

use super::*;

const CALLBACK: &str = "http://127.0.0.1:9/login/callback";
const VERIFIER: &str = "a-pkce-verifier-of-at-least-43-characters-long-xyz";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// An authorize URL as an OAuth client builds it.
fn authorize_url(fake: &FakeGithub, redirect_uri: &str, scope: Option<&str>) -> String {
    let mut url = fake.authorize_url();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", "the-state")
            .append_pair("code_challenge", &challenge(VERIFIER))
            .append_pair("code_challenge_method", "S256");
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
    }
    url.to_string()
}

async fn code_for(fake: &FakeGithub, login: &str, scope: Option<&str>) -> String {
    let back = fake
        .approve(&authorize_url(fake, CALLBACK, scope), login)
        .await;
    let pairs: HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "the-state");
    assert_eq!(back.as_str().split('?').next(), Some(CALLBACK));
    pairs["code"].clone()
}

async fn exchange(
    fake: &FakeGithub,
    fields: &[(&str, &str)],
    json: bool,
) -> (StatusCode, String, String) {
    let mut request = reqwest::Client::new().post(fake.token_url()).form(fields);
    if json {
        request = request.header("accept", "application/json");
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

fn fields<'a>(code: &'a str, verifier: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
        ("grant_type", "authorization_code"),
    ]
}

fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn token_answers_are_form_encoded_unless_json_is_asked_for() {
    let fake = FakeGithub::start().await;
    let code = code_for(&fake, "plain", None).await;
    let (status, content_type, body) =
        exchange(&fake, &fields(&code, VERIFIER, CALLBACK), false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/x-www-form-urlencoded"));
    let answer: HashMap<_, _> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert!(answer["access_token"].starts_with("gho_"), "{body}");
    assert_eq!(answer["token_type"], "bearer");

    let code = code_for(&fake, "plain", None).await;
    let (status, content_type, body) =
        exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"));
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["access_token"].as_str().unwrap().starts_with("gho_"));
    assert_eq!(answer["scope"], "");
}

#[tokio::test]
async fn codes_are_single_use_bound_to_the_redirect_and_the_pkce_challenge() {
    let fake = FakeGithub::start().await;
    // Used twice.
    let code = code_for(&fake, "twice", None).await;
    let (_, _, first) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
    assert_eq!(error_of(&first), "");
    let (status, _, again) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
    assert_eq!(status, StatusCode::OK, "GitHub says 200 even for errors");
    assert_eq!(error_of(&again), "bad_verification_code");
    assert!(again.contains("The code passed is incorrect or expired."));

    // Another redirect_uri, a wrong verifier, no verifier, a made-up code.
    let wrong_verifier = "another-verifier-that-is-long-enough-to-be-valid-1234";
    for (verifier, redirect) in [
        (VERIFIER, "http://127.0.0.1:9/elsewhere"),
        (wrong_verifier, CALLBACK),
        ("", CALLBACK),
    ] {
        let code = code_for(&fake, "binder", None).await;
        let (_, _, body) = exchange(&fake, &fields(&code, verifier, redirect), true).await;
        assert_eq!(
            error_of(&body),
            "bad_verification_code",
            "{verifier} {redirect}"
        );
        // A failed attempt uses the code up too.
        let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        assert_eq!(error_of(&body), "bad_verification_code");
    }
    let (_, _, body) = exchange(
        &fake,
        &fields("0123456789abcdef0123", VERIFIER, CALLBACK),
        true,
    )
    .await;
    assert_eq!(error_of(&body), "bad_verification_code");

    // Expired.
    fake.set_code_lifetime(Duration::ZERO);
    let code = code_for(&fake, "late", None).await;
    let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
    assert_eq!(error_of(&body), "bad_verification_code");

    // Form-encoded errors when JSON is not asked for.
    let (status, content_type, body) =
        exchange(&fake, &fields("nope", VERIFIER, CALLBACK), false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/x-www-form-urlencoded"));
    assert!(body.starts_with("error=bad_verification_code&"), "{body}");
}

#[tokio::test]
async fn the_client_must_authenticate_in_the_body_or_with_basic_auth() {
    let fake = FakeGithub::start().await;
    let code = code_for(&fake, "client", None).await;
    let mut wrong = fields(&code, VERIFIER, CALLBACK);
    wrong[1] = ("client_secret", "guessed");
    let (_, _, body) = exchange(&fake, &wrong, true).await;
    assert_eq!(error_of(&body), "incorrect_client_credentials");

    let code = code_for(&fake, "client", None).await;
    let body_fields: Vec<_> = fields(&code, VERIFIER, CALLBACK)
        .into_iter()
        .skip(2)
        .collect();
    let response = reqwest::Client::new()
        .post(fake.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("accept", "application/json")
        .form(&body_fields)
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert!(answer["access_token"].is_string(), "{answer}");
}

#[tokio::test]
async fn the_authorize_page_keeps_to_the_registered_callback() {
    let fake = FakeGithub::start().await;
    fake.register_callback(CALLBACK);
    fake.add_user("visitor");
    let response = github_browser()
        .get(authorize_url(&fake, "https://evil.example/steal", None))
        .header(SIGNED_IN_AS, "visitor")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "no redirect elsewhere");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("redirect_uri MUST match")
    );

    let denied = fake
        .deny(&authorize_url(&fake, CALLBACK, None), "visitor")
        .await;
    let pairs: HashMap<_, _> = denied.query_pairs().into_owned().collect();
    assert_eq!(pairs["error"], "access_denied");
    assert_eq!(pairs["state"], "the-state");
    assert!(!pairs.contains_key("code"));
    let recorded = fake.authorize_requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1].query_pairs()["code_challenge_method"], "S256");
}

#[tokio::test]
async fn the_api_wants_a_user_agent_and_a_good_token() {
    let fake = FakeGithub::start().await;
    let id = fake.add_user("api-user");
    let code = code_for(&fake, "api-user", Some("read:org")).await;
    let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["scope"], "read:org");
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let user_url = format!("{}/user", fake.api_url());

    // reqwest sends no User-Agent unless told to.
    let response = reqwest::Client::new()
        .get(&user_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("User-Agent header"));

    let client = reqwest::Client::builder()
        .user_agent("fake-test")
        .build()
        .unwrap();
    let response = client
        .get(&user_url)
        .bearer_auth("gho_unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");

    let response = client
        .get(&user_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["login"], "api-user");
    assert_eq!(body["id"], id);

    // Membership: visible with read:org, 404 when not a member.
    fake.set_org_membership("Some-Org", "api-user", "active");
    let membership = |org: &str| {
        client
            .get(format!("{}/user/memberships/orgs/{org}", fake.api_url()))
            .header("authorization", format!("token {token}"))
            .send()
    };
    let response = membership("some-org").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "active");
    assert_eq!(
        membership("other-org").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Without read:org the membership is hidden.
    let code = code_for(&fake, "api-user", None).await;
    let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
    let plain: Value = serde_json::from_str(&body).unwrap();
    let response = client
        .get(format!("{}/user/memberships/orgs/some-org", fake.api_url()))
        .bearer_auth(plain["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
