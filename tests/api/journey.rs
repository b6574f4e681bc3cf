//! The whole journey of a user: log in, register, launch, open Jupyter,
//! delete; and what the cloud received along the way.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;
use stackbinder::cloud::{Cloud, META_LOGIN, META_OWNER, META_REPO, META_VM};
use stackbinder::config::JupyterAccess;
use stackbinder::domain::{GithubId, Login};
use url::Url;

const LAUNCH_QUERY: &str = "/VM_start?giturl=https%3A%2F%2Fgithub.com%2Fbinder-examples%2Frequirements&ref=main&urlpath=lab%2Ftree%2Findex.ipynb";

// With floating IPs: the link is opened straight at the VM here; the
// proxied link is in proxy_mode.rs.
#[tokio::test]
async fn log_in_register_launch_open_jupyter_and_delete() {
    let app = spawn_app_with(TestOptions {
        floating_ip_pool: Some("public".into()),
        jupyter_access: JupyterAccess::FloatingIp,
        ..TestOptions::default()
    })
    .await;

    // A launch link before logging in leads to the login, which remembers it.
    let response = app.get(LAUNCH_QUERY).await;
    let to_login = location(&response);
    let next = Url::parse(&format!("http://x{to_login}")).unwrap();
    assert_eq!(next.path(), "/login");
    assert_eq!(
        next.query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned()),
        Some(LAUNCH_QUERY.to_owned())
    );

    // Logged in but not registered: no launching.
    app.login("alice").await;
    let (status, home) = app.get_page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("registration link"), "{home}");
    let (status, page) = app.get_page(LAUNCH_QUERY).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("You are not registered yet"), "{page}");
    let csrf = app.csrf().await;
    let response = app
        .post_form(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("ref", "main")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.api_vm().await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);

    // The registration link.
    let response = app.register().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are registered")
    );

    // The confirmation page shows what will be launched, and launches nothing.
    let (status, page) = app.get_page(LAUNCH_QUERY).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = unescape(&page);
    assert!(page.contains(REPO), "{page}");
    assert!(page.contains("<code>main</code>"), "{page}");
    assert!(page.contains("/lab/tree/index.ipynb"), "{page}");
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);

    // Launch.
    let response = app.launch(REPO, "main", "lab/tree/index.ipynb").await;
    assert_is_redirect_to(&response, "/VM_status");
    let view = app.api_vm_json().await;
    assert_eq!(view["repo"], REPO);
    assert_eq!(view["git_ref"], "main");
    assert_eq!(view["url_path"], "lab/tree/index.ipynb");
    assert_eq!(view["name"], "alice");
    assert!(
        view["jupyter_url"].is_null(),
        "no link before the VM is ready: {view:#}"
    );

    let view = app.wait_for_state("ready").await;
    assert_eq!(view["step"], "ready");
    assert_eq!(view["percent"], 100);
    assert_eq!(view["error"], serde_json::Value::Null);
    assert_eq!(view["can_delete"], true);

    // The Jupyter link.
    let jupyter = view["jupyter_url"]
        .as_str()
        .expect("a ready VM has a Jupyter link")
        .to_owned();
    assert!(jupyter.starts_with("http://127."), "{jupyter}");
    let jupyter_url = Url::parse(&jupyter).unwrap();
    assert_eq!(jupyter_url.path(), "/user/alice/lab/tree/index.ipynb");
    let token = jupyter_url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .expect("the link carries the token");
    assert!(token.len() >= 32, "{token}");

    // The link works, and only with its token.
    let opened = plain_client()
        .get(&jupyter)
        .send()
        .await
        .expect("Jupyter answers");
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(opened.text().await.unwrap().contains(REPO));
    let mut without_token = jupyter_url.clone();
    without_token.set_query(None);
    let refused = plain_client()
        .get(without_token)
        .send()
        .await
        .expect("Jupyter answers");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The status page shows the link.
    let (status, page) = app.get_page("/VM_status").await;
    assert_eq!(status, StatusCode::OK);
    let page = unescape(&page);
    assert!(page.contains(&format!("href=\"{jupyter}\"")), "{page}");
    assert!(page.contains("data-state=\"ready\""), "{page}");

    // The log lines the VM sent.
    let log = strings(&view["log"]);
    assert!(
        log.iter().any(|l| l == &format!("Cloning {REPO} at main")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("Jupyter Server") && l.contains("is running")),
        "{log:?}"
    );

    // What the cloud received: exactly one server, as configured.
    let created = app.cloud.created();
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    let spec = &created[0];
    assert_eq!(spec.name, "alice");
    assert_eq!(spec.image, app.config.cloud.image);
    assert_eq!(spec.image, "stackbinder-snapshot");
    assert_eq!(spec.flavor, app.config.cloud.flavor);
    assert_eq!(spec.volume_size_gb, 150);
    assert!(spec.delete_volume_on_termination);
    assert_eq!(spec.security_groups, ["ssh-whitelist", "Open-top"]);
    let owner = GithubId::for_demo(&Login::parse("alice").unwrap());
    assert_eq!(spec.metadata[META_OWNER], owner.to_string());
    assert!(spec.metadata[META_OWNER].parse::<i64>().is_ok());
    assert_eq!(spec.metadata[META_LOGIN], "alice");
    assert_eq!(spec.metadata[META_REPO], REPO);
    assert_eq!(spec.metadata[META_VM], view["id"].as_str().unwrap());
    assert!(
        spec.user_data.starts_with("#cloud-config\n"),
        "{}",
        spec.user_data
    );
    // The owner's launch is the VM's assignment, not in its user data.
    assert!(!spec.user_data.contains(REPO));
    assert!(!spec.user_data.contains(&token));
    let data = app.launch_data(0).await;
    assert_eq!(data.vm_id.to_string(), view["id"].as_str().unwrap());
    assert_eq!(data.repo, REPO);
    assert_eq!(data.git_ref, "main");
    assert_eq!(data.url_path, "lab/tree/index.ipynb");
    assert_eq!(data.jupyter_token, token);
    assert_eq!(
        data.callback_url.as_str(),
        format!("{}/api/vm/callback", app.base)
    );
    assert!(data.callback_secret.len() >= 32);
    assert!(
        !spec
            .user_data
            .contains(&format!("\"{}\"", app.registration_secret()))
    );

    // The link points at the floating IP, which the server holds.
    assert_eq!(app.cloud.floating_ip_count(), 1);
    assert_eq!(app.cloud.calls(Op::AttachFloatingIp), 1);
    let owned = app
        .cloud
        .list_owned(app.provisioner().installation())
        .await
        .unwrap();
    assert_eq!(owned.floating_ips.len(), 1);
    let fip = &owned.floating_ips[0].address;
    assert_eq!(view["address"], fip.as_str());
    assert_eq!(jupyter_url.host_str(), Some(fip.as_str()));
    assert_eq!(owned.servers.len(), 1);
    assert_ne!(
        &owned.servers[0].addresses[0], fip,
        "the fixed address is not the public one"
    );

    // Delete.
    let response = app.delete_vm().await;
    assert_is_redirect_to(&response, "/VM_status");
    let view = app.wait_for_state("deleted").await;
    assert!(view["jupyter_url"].is_null());
    assert_eq!(view["can_delete"], false);
    assert_eq!(app.cloud.server_count(), 0, "the server is gone");
    assert_eq!(app.cloud.volume_count(), 0, "the boot volume is gone");
    assert_eq!(
        app.cloud.floating_ip_count(),
        0,
        "the floating IP went back to the pool"
    );
    let owned = app
        .cloud
        .list_owned(app.provisioner().installation())
        .await
        .unwrap();
    assert!(
        owned.servers.is_empty() && owned.volume_ids.is_empty() && owned.floating_ips.is_empty()
    );
    assert!(
        plain_client().get(&jupyter).send().await.is_err(),
        "the Jupyter of a deleted VM no longer answers"
    );

    // The home page offers a new launch.
    let (_, home) = app.get_page("/").await;
    assert!(home.contains("id=\"launch-form\""), "{home}");
}

#[tokio::test]
async fn after_a_deletion_the_user_can_launch_again() {
    let app = spawn_app().await;
    app.login_registered("bob").await;
    assert_is_redirect_to(&app.launch(REPO, "", "").await, "/VM_status");
    let first = app.wait_for_state("ready").await;
    assert_eq!(first["git_ref"], "HEAD", "no ref means the default branch");
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;

    let other = "https://gitlab.com/group/sub/project.git";
    assert_is_redirect_to(
        &app.launch(other, "v1.0", "tree/x.ipynb").await,
        "/VM_status",
    );
    let second = app.wait_for_state("ready").await;
    assert_ne!(first["id"], second["id"]);
    assert_eq!(second["repo"], other);
    let created = app.cloud.created();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1].name, "bob");
    assert_eq!(created[1].metadata[META_REPO], other);
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.store().list_vms(true).await.unwrap().len(), 2);
    assert_eq!(app.store().list_vms(false).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_user_sees_only_their_own_vm() {
    let app = spawn_app().await;
    app.login_registered("carol").await;
    let other = app.new_browser();
    other.login_registered("dave").await;

    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let mine = app.wait_for_state("ready").await;
    assert_eq!(other.api_vm().await.status(), StatusCode::NOT_FOUND);
    let (_, page) = other.get_page("/VM_delete").await;
    assert!(page.contains("No VM to delete"), "{page}");
    // Dave deleting "his" VM does not touch Carol's.
    assert_is_redirect_to(&other.delete_vm().await, "/");
    let (_, page) = other.get_page("/VM_status").await;
    assert!(!page.contains(mine["id"].as_str().unwrap()));
    assert_eq!(app.api_vm_json().await["state"], "ready");
    assert_eq!(app.cloud.calls(Op::DeleteServer), 0);
}

#[tokio::test]
async fn the_event_stream_sends_the_status() {
    let app = spawn_app().await;
    app.login_registered("erin").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;

    let mut events = app.get("/api/vm/events").await;
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let chunk = tokio::time::timeout(WAIT, events.chunk())
        .await
        .expect("an event arrives")
        .unwrap()
        .expect("the stream is open");
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.contains("event: status"), "{text}");
    assert!(text.contains("\"state\":\"ready\""), "{text}");
}

#[tokio::test]
async fn the_registration_link_leads_through_the_login_and_back() {
    let app = spawn_app().await;
    let link = app.registration_path();
    let response = app.get(&link).await;
    let to_login = location(&response);
    let (status, page) = app.get_page(&to_login).await;
    assert_eq!(status, StatusCode::OK);
    let page = unescape(&page);
    assert!(
        page.contains(&format!("name=\"next\" value=\"{link}\"")),
        "{page}"
    );
    let csrf = csrf_from(&page);
    let response = app
        .post_form(
            "/login/demo",
            &[("csrf", &csrf), ("login", "hana"), ("next", &link)],
        )
        .await;
    assert_is_redirect_to(&response, &link);
    let response = app.register().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are registered")
    );
    let (status, _) = app.get_page("/VM_start").await;
    assert_eq!(status, StatusCode::OK);
    let user = app.store().list_users().await.unwrap();
    assert_eq!(user.len(), 1);
    assert_eq!(
        user[0].registered_via.as_deref(),
        Some("link: registration link")
    );
}
