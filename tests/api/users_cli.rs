//! The `users` commands of the real binary against the database of a
//! running application with GitHub login: links made on the command line
//! work in the browser, removals count at once, and the old tool's
//! allowed_users.cfg can be imported.

use crate::fake_github::*;
use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::domain::{GithubId, Login, VmState};
use std::process::{Command, Output};
use url::Url;

/// Run `stackbinder ARGS` on the application's database.
fn run(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(args)
        .env("STACKBINDER_DATABASE__URL", &app.config.database.url)
        .env("STACKBINDER_SERVER__PUBLIC_URL", &app.base)
        .env("STACKBINDER_SERVER__BIND", "127.0.0.1:0")
        .env_remove("STACKBINDER_CONFIG")
        .env_remove("STACKBINDER_REGISTRATION__SECRET")
        .env_remove("STACKBINDER_REGISTRATION__SECRET_FILE")
        .output()
        .expect("the binary runs")
}

fn ok(app: &TestApp, args: &[&str]) -> String {
    let out = run(app, args);
    assert!(
        out.status.success(),
        "stackbinder {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The line of `users link list` for link `id`.
fn listed(app: &TestApp, id: i64) -> String {
    let list = ok(app, &["users", "link", "list"]);
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("link {id} is not listed:\n{list}"))
        .to_owned()
}

/// Log in `name` in a new browser, open `path` and press Register.
async fn try_to_register(app: &TestApp, fake: &FakeGithub, name: &str, path: &str) -> StatusCode {
    let browser = app.new_browser();
    github_login(&browser, fake, name).await;
    let (status, page) = browser.get_page(path).await;
    if status != StatusCode::OK {
        return status;
    }
    let csrf = csrf_from(&page);
    browser.post_form(path, &[("csrf", &csrf)]).await.status()
}

#[tokio::test]
async fn a_link_made_with_the_cli_works_until_it_is_used_up_or_revoked() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;

    let out = ok(
        &app,
        &[
            "users",
            "link",
            "create",
            "--label",
            "Course A",
            "--max-uses",
            "2",
        ],
    );
    let url = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http"))
        .unwrap_or_else(|| panic!("no URL printed: {out}"));
    let url = Url::parse(url).unwrap();
    assert_eq!(url.origin(), Url::parse(&app.base).unwrap().origin());
    let path = url.path().to_owned();
    let secret = path.strip_prefix("/register/").expect("a registration URL");
    assert!(secret.len() >= 32, "{secret}");

    // Only its hash is stored, with the label and the limit.
    let links = app.store().list_links().await.unwrap();
    assert_eq!(links.len(), 1);
    let link = &links[0];
    assert_eq!(link.label, "Course A");
    assert_eq!(link.max_uses, Some(2));
    assert_eq!(link.secret_hash, stackbinder::secret::hash(secret));
    assert!(out.contains(&format!("link {}", link.id)), "{out}");
    let line = listed(&app, link.id);
    assert!(
        line.contains("Course A") && line.contains("0/2") && line.contains("active"),
        "{line}"
    );
    assert!(!ok(&app, &["users", "link", "list"]).contains(secret));

    // Two people register with it; the third finds it used up.
    assert_eq!(
        try_to_register(&app, &fake, "one", &path).await,
        StatusCode::OK
    );
    assert_eq!(
        try_to_register(&app, &fake, "two", &path).await,
        StatusCode::OK
    );
    assert_eq!(
        try_to_register(&app, &fake, "three", &path).await,
        StatusCode::GONE
    );
    let one = app
        .store()
        .user_by_login(&Login::parse("one").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.registered_via.as_deref(), Some("link: Course A"));
    let line = listed(&app, link.id);
    assert!(line.contains("2/2") && line.contains("usedup"), "{line}");

    // Another link, revoked before anyone uses it.
    let out = ok(&app, &["users", "link", "create", "--label", "Course B"]);
    let second = Url::parse(
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with("http"))
            .unwrap(),
    )
    .unwrap();
    let second_id = app.store().list_links().await.unwrap()[0].id;
    assert_ne!(second_id, link.id);
    let revoked = ok(&app, &["users", "link", "revoke", &second_id.to_string()]);
    assert!(revoked.contains("revoked"), "{revoked}");
    assert_eq!(
        try_to_register(&app, &fake, "four", second.path()).await,
        StatusCode::NOT_FOUND
    );
    assert!(listed(&app, second_id).contains("revoked"));

    let out = run(&app, &["users", "link", "revoke", "9999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no link 9999"));
    let out = run(
        &app,
        &["users", "link", "create", "--label", "x", "--max-uses", "0"],
    );
    assert!(!out.status.success(), "a link for nobody is refused");
}

#[tokio::test]
async fn removing_a_user_with_the_cli_counts_at_their_next_request() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let id = github_login(&app, &fake, "expelled").await;
    register(&app).await;
    let page = app.confirm_page(REPO, "main", "").await;
    let csrf = csrf_from(&page.text().await.unwrap());
    assert_is_redirect_to(
        &app.post_form(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("ref", "main")],
        )
        .await,
        "/VM_status",
    );
    app.wait_for_state("ready").await;

    let out = ok(&app, &["users", "remove", "expelled"]);
    assert!(out.contains("removed"), "{out}");

    let (status, page) = app.get_page("/VM_start").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Your access was withdrawn"), "{page}");
    assert_eq!(app.api_vm().await.status(), StatusCode::FORBIDDEN);
    let vm = app
        .store()
        .list_vms_of(GithubId(id))
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert!(
        matches!(vm.state, VmState::Deleting | VmState::Deleted),
        "{:?}",
        vm.state
    );
}

#[tokio::test]
async fn importing_allowed_users_cfg_allows_the_good_lines_and_names_the_bad_one() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allowed_users.cfg");
    std::fs::write(
        &file,
        "# allowed users of the old tool\n\
         \n\
         alice\n\
         \x20 bob   # teaching assistant\n\
         not a login!\n\
         carol\n",
    )
    .unwrap();

    let out = run(&app, &["users", "import", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad line fails the import");
    assert!(
        stderr.contains(&format!("{}:5:", file.display())),
        "the bad line's number: {stderr}"
    );
    assert!(stderr.contains("not a login!"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 login(s) allowed"), "{stdout}");
    let invited: Vec<String> = app
        .store()
        .list_invites()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.login.to_string())
        .collect();
    assert_eq!(invited, ["alice", "bob", "carol"]);

    // An imported login may launch right after their first GitHub login.
    github_login(&app, &fake, "bob").await;
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
    let outsider = app.new_browser();
    github_login(&outsider, &fake, "dave").await;
    assert_eq!(
        outsider.get("/VM_start").await.status(),
        StatusCode::FORBIDDEN
    );
}
