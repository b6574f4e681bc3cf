//! The application in GitHub mode against the fake, and a login through
//! it, as the tests use them.

use super::*;
use crate::helpers::{Browser, TestApp, TestOptions, location, spawn_app_with};
use stackbinder::config::Config;

/// The application in GitHub mode, talking to `fake` (timeouts of 5 s
/// unless `configure` says otherwise).
pub async fn spawn_with_github(
    fake: &FakeGithub,
    configure: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    let (authorize, token, api) = (fake.authorize_url(), fake.token_url(), fake.api_url());
    let app = spawn_app_with(TestOptions {
        github_login: true,
        config: Some(Box::new(move |config: &mut Config| {
            config.github.authorize_url = authorize;
            config.github.token_url = token;
            config.github.api_url = api;
            config.github.timeout_seconds = NonZero::new(5).unwrap();
            configure(config);
        })),
        ..TestOptions::default()
    })
    .await;
    assert_eq!(app.config.github.client_id, CLIENT_ID);
    fake.register_callback(&format!("{}/login/callback", app.base));
    app
}

/// GET `path` (which must send the browser on to GitHub, perhaps through
/// `/login`) and return the authorize URL it ends at.
pub async fn authorize_url_from(browser: &Browser, fake: &FakeGithub, path: &str) -> String {
    let mut to = path.to_owned();
    for _ in 0..3 {
        let response = if to.starts_with("http") {
            browser.get_url(&to).await
        } else {
            browser.get(&to).await
        };
        to = location(&response);
        if to.starts_with(&fake.base) {
            return to;
        }
    }
    panic!("{path} does not lead to GitHub (ended at {to})");
}

/// Go through the whole GitHub login from `path` as `login`; returns the
/// app's answer to the callback.
pub async fn github_login_from(
    browser: &Browser,
    fake: &FakeGithub,
    path: &str,
    login: &str,
) -> reqwest::Response {
    let authorize = authorize_url_from(browser, fake, path).await;
    let callback = fake.approve(&authorize, login).await;
    browser.get_url(callback.as_str()).await
}

/// Log in with GitHub as `login` from `/login`; must end on `/`.
pub async fn github_login(browser: &Browser, fake: &FakeGithub, login: &str) -> i64 {
    let response = github_login_from(browser, fake, "/login", login).await;
    let status = response.status();
    let to = response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/")),
        "the login of {login} succeeds: {:?}",
        response.text().await
    );
    fake.add_user(login)
}

/// Open the configured registration link and press the button.
pub async fn register(browser: &Browser) {
    let response = browser.register().await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("You are registered"), "{page}");
}

/// Whether the browser is logged in, by what `/api/vm` says.
pub async fn is_logged_in(browser: &Browser) -> bool {
    browser.api_vm().await.status() != StatusCode::UNAUTHORIZED
}
