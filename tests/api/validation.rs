//! What a user types is checked at the edge: a bad repository, ref or path
//! gets a 400 with a message, and nothing reaches the store or the cloud.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;
use url::Url;

/// (giturl, a piece of the message the user must see)
const BAD_GITURLS: &[(&str, &str)] = &[
    ("http://github.com/a/b", "must start with https://"),
    ("ssh://github.com/a/b", "must start with https://"),
    ("git://github.com/a/b", "must start with https://"),
    ("file:///etc/passwd", "must start with https://"),
    ("git@github.com:a/b.git", "is not a URL"),
    ("--upload-pack=touch /tmp/x", "contains ' '"),
    ("--upload-pack=x", "is not a URL"),
    ("ext::sh -c id", "contains ' '"),
    ("https://user:pw@github.com/a/b", "user name or password"),
    ("https://token@github.com/a/b", "user name or password"),
    ("https://github.com/a/b?x=1", "?query or #fragment"),
    ("https://github.com/a/b#frag", "?query or #fragment"),
    ("https://github.com/a/b c", "contains ' '"),
    ("https://github.com/a/b\n;reboot", "contains '\\n'"),
    ("https://github.com/a/$(id)", "contains '$'"),
    ("https://github.com/a/b;reboot", "contains ';'"),
    (
        "https://git`id`hub.com/a/b",
        "host of the repository URL contains '`'",
    ),
    ("https://github.com", "no repository"),
    ("https://github.com/", "no repository"),
];

/// (ref, a piece of the message)
const BAD_REFS: &[(&str, &str)] = &[
    ("--upload-pack=x", "the git ref"),
    ("-b", "cannot start with -"),
    ("a;b", "the git ref contains ';'"),
    ("$(id)", "the git ref contains '$'"),
    ("`id`", "the git ref contains '`'"),
    ("a b", "the git ref contains ' '"),
    ("..", "the git ref cannot start with"),
    ("../x", "the git ref cannot start with"),
    ("a..b", "cannot contain .."),
    ("x.lock", "cannot end with"),
    ("@{-1}", "the git ref contains '@'"),
];

/// (urlpath, a piece of the message)
const BAD_URLPATHS: &[(&str, &str)] = &[
    ("../x", "cannot contain .."),
    ("lab/../../x", "cannot contain .."),
    ("a?b", "the path to open contains '?'"),
    ("lab?token=x", "the path to open contains '?'"),
    ("lab#x", "the path to open contains '#'"),
    ("https://evil.example", "the path to open contains ':'"),
    ("lab//x", "cannot contain //"),
    ("a;b", "the path to open contains ';'"),
];

async fn registered_app() -> TestApp {
    let app = spawn_app().await;
    app.login_registered("valerie").await;
    app
}

/// GET and POST `/VM_start` with these parameters both answer 400 with
/// `message` on the page.
async fn assert_refused(app: &TestApp, params: &[(&str, &str)], message: &str) {
    let response = app
        .client
        .get(app.url("/VM_start"))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let page = unescape(&response.text().await.unwrap());
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "GET /VM_start with {params:?}"
    );
    assert!(
        page.contains("That cannot be launched"),
        "{params:?}: {page}"
    );
    assert!(
        page.contains(message),
        "{params:?}: expected {message:?} in\n{page}"
    );
    assert!(
        !page.contains("action=\"/VM_start\" class=\"card\""),
        "no launch button for {params:?}"
    );

    let csrf = app.csrf().await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(params);
    let response = app.post_form("/VM_start", &form).await;
    let status = response.status();
    let page = unescape(&response.text().await.unwrap());
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "POST /VM_start with {params:?}"
    );
    assert!(
        page.contains(message),
        "{params:?}: expected {message:?} in\n{page}"
    );
}

async fn assert_nothing_launched(app: &TestApp) {
    // Give a background driver the time to act on anything recorded.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
    assert!(app.cloud.created().is_empty());
    assert!(app.store().list_vms(true).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_repository_urls_are_refused_with_a_message() {
    let app = registered_app().await;
    for (giturl, message) in BAD_GITURLS {
        assert_refused(&app, &[("giturl", giturl), ("ref", "main")], message).await;
    }
    let long = format!("https://github.com/a/{}", "b".repeat(300));
    assert_refused(&app, &[("giturl", &long)], "longer than 255 characters").await;
    assert_nothing_launched(&app).await;
}

#[tokio::test]
async fn repository_urls_with_dot_dot_segments_are_refused() {
    // RepoSpec says "must not contain . or .. segments", but the url crate
    // resolves them away before the check sees them.
    let app = registered_app().await;
    for giturl in ["https://github.com/../../etc", "https://github.com/a/../b"] {
        assert_refused(
            &app,
            &[("giturl", giturl)],
            "must not contain . or .. segments",
        )
        .await;
    }
    assert_nothing_launched(&app).await;
}

#[tokio::test]
async fn bad_refs_are_refused_with_a_message() {
    let app = registered_app().await;
    for (git_ref, message) in BAD_REFS {
        assert_refused(&app, &[("giturl", REPO), ("ref", git_ref)], message).await;
    }
    assert_nothing_launched(&app).await;
}

#[tokio::test]
async fn bad_paths_to_open_are_refused_with_a_message() {
    let app = registered_app().await;
    for (urlpath, message) in BAD_URLPATHS {
        assert_refused(&app, &[("giturl", REPO), ("urlpath", urlpath)], message).await;
    }
    assert_refused(
        &app,
        &[("giturl", REPO), ("labpath", "../x.ipynb")],
        "cannot contain ..",
    )
    .await;
    assert_refused(
        &app,
        &[("giturl", REPO), ("filepath", "a?b")],
        "contains '?'",
    )
    .await;
    assert_refused(
        &app,
        &[("giturl", REPO), ("urlpath", "lab"), ("labpath", "x.ipynb")],
        "give only one of urlpath, labpath and filepath",
    )
    .await;
    assert_nothing_launched(&app).await;
}

#[tokio::test]
async fn a_path_to_open_that_starts_with_two_slashes_stays_on_the_vm() {
    // `//evil.example/x` is a network-path reference (another host). UrlPath
    // makes paths relative by stripping leading slashes (a deliberate choice,
    // see its unit test `a_leading_double_slash_cannot_name_another_host`),
    // so what must hold is that the Jupyter link still points at the VM.
    let app = registered_app().await;
    let response = app.confirm_page(REPO, "main", "//evil.example/x").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = unescape(&response.text().await.unwrap());
    assert!(page.contains("<code>/evil.example/x</code>"), "{page}");
    assert!(!page.contains("value=\"//evil.example/x\""), "{page}");

    assert_is_redirect_to(
        &app.launch(REPO, "main", "//evil.example/x").await,
        "/VM_status",
    );
    let view = app.wait_for_state("ready").await;
    assert_eq!(view["url_path"], "evil.example/x");
    let jupyter = Url::parse(view["jupyter_url"].as_str().unwrap()).unwrap();
    let ours = Url::parse(&app.base).unwrap();
    assert_eq!(
        jupyter.origin(),
        ours.origin(),
        "the link stays on stackbinder's proxy: {jupyter}"
    );
    let login = app.launch_data(0).await.login;
    assert_eq!(jupyter.path(), format!("/user/{login}/evil.example/x"));
    assert_eq!(app.launch_data(0).await.url_path, "evil.example/x");
}

#[tokio::test]
async fn hostile_input_is_escaped_on_the_page() {
    let app = registered_app().await;
    let hostile = "https://github.com/a/b\"><script>alert(1)</script>";
    let response = app
        .confirm_page(hostile, "x\"><img src=x onerror=alert(1)>", "")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(
        unescape(&page).contains(hostile),
        "the input is shown back, escaped: {page}"
    );
    assert_nothing_launched(&app).await;
}

#[tokio::test]
async fn validation_needs_a_registered_user_first() {
    let app = spawn_app().await;
    // Not logged in: to the login page, nothing else.
    let response = app.get("/VM_start?giturl=http://x").await;
    assert!(location(&response).starts_with("/login?next="));
    let csrf = app.csrf().await;
    let response = app
        .post_form("/VM_start", &[("csrf", &csrf), ("giturl", REPO)])
        .await;
    assert!(location(&response).starts_with("/login?next="));
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
    assert!(app.store().list_vms(true).await.unwrap().is_empty());
}

/// The `/VM_start` query a Binder-style link redirects to.
async fn alias_target(app: &TestApp, path: &str) -> Vec<(String, String)> {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    let target = Url::parse(&format!("http://x{}", location(&response))).unwrap();
    assert_eq!(target.path(), "/VM_start", "{path}");
    target
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn binder_links_lead_to_the_confirmation_page() {
    let app = registered_app().await;
    assert_eq!(
        alias_target(&app, "/v2/gh/org/repo/main?labpath=x.ipynb").await,
        pairs(&[
            ("giturl", "https://github.com/org/repo"),
            ("ref", "main"),
            ("labpath", "x.ipynb")
        ])
    );
    assert_eq!(
        alias_target(
            &app,
            "/v2/gh/org/repo.git/feature/x?urlpath=voila/render/a.ipynb"
        )
        .await,
        pairs(&[
            ("giturl", "https://github.com/org/repo"),
            ("ref", "feature/x"),
            ("urlpath", "voila/render/a.ipynb")
        ])
    );
    assert_eq!(
        alias_target(&app, "/v2/gh/org/repo").await,
        pairs(&[("giturl", "https://github.com/org/repo"), ("ref", "HEAD")])
    );
    assert_eq!(
        alias_target(&app, "/v2/gl/group%2Fsub%2Fproject/v2").await,
        pairs(&[
            ("giturl", "https://gitlab.com/group/sub/project"),
            ("ref", "v2")
        ])
    );
    assert_eq!(
        alias_target(
            &app,
            "/v2/git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/main?filepath=x.ipynb"
        )
        .await,
        pairs(&[
            ("giturl", "https://example.org/a/b.git"),
            ("ref", "main"),
            ("filepath", "x.ipynb")
        ])
    );

    // The confirmation page it leads to shows the launch; nothing starts.
    let response = app.get("/v2/gh/org/repo/main?labpath=x.ipynb").await;
    let (status, page) = app.get_page(&location(&response)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = unescape(&page);
    assert!(
        page.contains("<code>https://github.com/org/repo</code>"),
        "{page}"
    );
    assert!(page.contains("<code>/lab/tree/x.ipynb</code>"), "{page}");

    // Bad aliases are refused at once.
    for bad in [
        "/v2/gh/org/re%20po/main",
        "/v2/gh/.hidden/repo/main",
        "/v2/gl/lonely/main",
        "/v2/git/http%3A%2F%2Fx%2Fy/main",
    ] {
        let response = app.get(bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_nothing_launched(&app).await;
}
