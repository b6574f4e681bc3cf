//! The service around the rules, on a real store (SQLite in a temporary
//! directory) and a provisioner over the simulated cloud: what each
//! operation changes, and what `decide` answers afterwards.

use super::*;
use crate::domain::{LaunchParams, VmState};
use crate::store::LinkState;

struct Fixture {
    access: Access,
    provisioner: Provisioner,
    _dir: tempfile::TempDir,
}

async fn fixture(registration: serde_json::Value) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config: Config = serde_json::from_value(serde_json::json!({
        "server": { "public_url": "https://binder.example.org/" },
        "database": { "url": format!("sqlite://{}", dir.path().join("t.db").display()) },
        "cloud": { "backend": "simulated" },
        "registration": registration,
    }))
    .unwrap();
    let provisioner = crate::app::provisioner(&config).await.unwrap();
    let access = Access::load(&config, &provisioner).await.unwrap();
    Fixture {
        access,
        provisioner,
        _dir: dir,
    }
}

fn login(name: &str) -> Login {
    Login::parse(name).unwrap()
}

const USE: Action = Action::Use { org_access: false };

fn refusal(result: Result<User, AccessError>) -> Option<Refusal> {
    match result {
        Err(AccessError::Refused { why, .. }) => Some(why),
        _ => None,
    }
}

#[tokio::test]
async fn a_blocked_account_is_refused_before_its_login_is_recorded() {
    let f = fixture(serde_json::json!({ "blocked_users": ["mallory", "id:66"] })).await;
    let by_name = f.access.log_in(GithubId(7), &login("mallory")).await;
    assert_eq!(refusal(by_name), Some(Refusal::Blocked));
    let by_id = f.access.log_in(GithubId(66), &login("someone")).await;
    assert_eq!(refusal(by_id), Some(Refusal::Blocked));
    let store = f.provisioner.store();
    assert!(store.user(GithubId(7)).await.unwrap().is_none());
    assert!(store.user(GithubId(66)).await.unwrap().is_none());
    // The name stays tied to the account that had it: renamed, still blocked.
    let renamed = f.access.log_in(GithubId(7), &login("mallory2")).await;
    assert_eq!(refusal(renamed), Some(Refusal::Blocked));
}

#[tokio::test]
async fn an_admin_login_is_tied_to_the_first_account_that_has_it() {
    let f = fixture(serde_json::json!({ "admins": ["alice"] })).await;
    let alice = f.access.log_in(GithubId(1), &login("alice")).await.unwrap();
    let admin = Action::Administer { org_access: false };
    assert_eq!(
        f.access.decide(&alice, admin),
        Decision::Allowed(AllowedBy::Admin)
    );
    assert!(f.access.is_admin(GithubId(1)));
    // Alice renames away; whoever takes "alice" next is nobody special.
    f.access
        .log_in(GithubId(1), &login("alice-b"))
        .await
        .unwrap();
    let taker = f.access.log_in(GithubId(2), &login("alice")).await.unwrap();
    assert_eq!(
        f.access.decide(&taker, admin),
        Decision::Refused(Refusal::NotRegistered)
    );
    assert!(!f.access.is_admin(GithubId(2)));
}

#[tokio::test]
async fn allowing_a_login_registers_or_invites_it() {
    let f = fixture(serde_json::json!({})).await;
    let bob = f.access.log_in(GithubId(3), &login("bob")).await.unwrap();
    assert_eq!(
        f.access.decide(&bob, USE),
        Decision::Refused(Refusal::NotRegistered)
    );
    assert_eq!(
        f.access.allow_login(&login("bob"), "cli").await.unwrap(),
        AllowOutcome::Registered
    );
    assert_eq!(
        f.access.allow_login(&login("bob"), "cli").await.unwrap(),
        AllowOutcome::AlreadyRegistered
    );
    assert_eq!(
        f.access.allow_login(&login("carol"), "cli").await.unwrap(),
        AllowOutcome::Invited
    );
    // The invitation registers carol at her first login.
    let carol = f.access.log_in(GithubId(4), &login("carol")).await.unwrap();
    assert_eq!(
        f.access.decide(&carol, USE),
        Decision::Allowed(AllowedBy::Registration)
    );
}

#[tokio::test]
async fn revoking_deletes_the_live_vm_and_sticks_until_an_admin_allows_again() {
    let f = fixture(serde_json::json!({})).await;
    f.access.log_in(GithubId(5), &login("dave")).await.unwrap();
    f.access.allow_login(&login("dave"), "cli").await.unwrap();
    let store = f.provisioner.store();
    let dave = store.user(GithubId(5)).await.unwrap().unwrap();
    let request = LaunchParams::default()
        .validate(&crate::config::LaunchConfig::default().default_repo)
        .unwrap();
    let vm = f.provisioner.launch(&dave, &request).await.unwrap();

    let revoked = f
        .access
        .revoke(&login("dave"), "admin root", "its owner was revoked")
        .await
        .unwrap();
    assert_eq!(revoked.vm.as_ref().map(|v| v.id), Some(vm.id));
    assert!(!revoked.uninvited);
    let deleting = store.vm(vm.id).await.unwrap().unwrap();
    assert_eq!(deleting.state, VmState::Deleting);
    let dave = revoked.user.unwrap();
    assert_eq!(
        f.access.decide(&dave, USE),
        Decision::Refused(Refusal::Withdrawn)
    );
    assert_eq!(
        f.access.decide(&dave, Action::Register),
        Decision::Refused(Refusal::Withdrawn)
    );
    // A course list imported again leaves them out.
    assert_eq!(
        f.access
            .import_login(&login("dave"), "import")
            .await
            .unwrap(),
        Imported::LeftOutRevoked
    );
    assert!(
        f.access
            .allow_user(GithubId(5), "admin root")
            .await
            .unwrap()
    );
    let dave = store.user(GithubId(5)).await.unwrap().unwrap();
    assert_eq!(
        f.access.decide(&dave, USE),
        Decision::Allowed(AllowedBy::Registration)
    );
}

#[tokio::test]
async fn revoking_an_invitation_or_a_stranger() {
    let f = fixture(serde_json::json!({})).await;
    f.access.allow_login(&login("erin"), "cli").await.unwrap();
    let invited = f.access.revoke(&login("erin"), "cli", "-").await.unwrap();
    assert!(invited.uninvited && invited.user.is_none() && invited.vm.is_none());
    let stranger = f.access.revoke(&login("frank"), "cli", "-").await.unwrap();
    assert!(!stranger.uninvited && stranger.user.is_none());
}

#[tokio::test]
async fn a_link_is_made_once_and_revoked_once() {
    let f = fixture(serde_json::json!({})).await;
    let created = f
        .access
        .create_link(
            LinkRequest {
                label: LinkLabel::parse(" Course 101 ").unwrap(),
                expires_in_days: Some(3),
                max_uses: Some(20),
            },
            "cli",
        )
        .await
        .unwrap();
    let url = created.url.as_str();
    let secret = url
        .strip_prefix("https://binder.example.org/register/")
        .expect(url);
    assert!(secret.len() >= 32, "{secret}");
    let link = &created.link;
    assert_eq!(
        (link.label.as_str(), link.max_uses, link.created_by.as_str()),
        ("Course 101", Some(20), "cli")
    );
    assert_eq!(link.secret_hash, crate::secret::hash(secret));
    let days = (link.expires_at.unwrap() - link.created_at).num_hours();
    assert!((71..=72).contains(&days), "{days} h");
    assert_eq!(link.state(chrono::Utc::now()), LinkState::Active);

    let id = link.id;
    assert_eq!(
        f.access.revoke_link(id).await.unwrap(),
        LinkRevocation::Revoked
    );
    assert_eq!(
        f.access.revoke_link(id).await.unwrap(),
        LinkRevocation::AlreadyRevoked
    );
    assert_eq!(
        f.access.revoke_link(id + 1).await.unwrap(),
        LinkRevocation::NoSuchLink
    );
}

#[tokio::test]
async fn membership_is_asked_at_login_only_with_allowed_orgs() {
    let with_orgs = fixture(serde_json::json!({ "allowed_orgs": ["acme"] })).await;
    let gina = with_orgs
        .access
        .log_in(GithubId(8), &login("gina"))
        .await
        .unwrap();
    assert!(with_orgs.access.asks_membership(&gina));
    assert_eq!(
        with_orgs
            .access
            .decide(&gina, Action::Use { org_access: true }),
        Decision::Allowed(AllowedBy::Organization)
    );
    let without = fixture(serde_json::json!({})).await;
    let gina = without
        .access
        .log_in(GithubId(8), &login("gina"))
        .await
        .unwrap();
    assert!(!without.access.asks_membership(&gina));
    assert_eq!(
        without
            .access
            .decide(&gina, Action::Use { org_access: true }),
        Decision::Refused(Refusal::NotRegistered)
    );
}

#[tokio::test]
async fn a_link_registers_until_it_runs_out_but_never_a_revoked_user() {
    let f = fixture(serde_json::json!({})).await;
    let created = f
        .access
        .create_link(
            LinkRequest {
                label: LinkLabel::parse("one seat").unwrap(),
                expires_in_days: None,
                max_uses: Some(1),
            },
            "cli",
        )
        .await
        .unwrap();
    let link = OpenedLink::Stored {
        id: created.link.id,
        label: created.link.label.clone(),
    };
    let hana = f.access.log_in(GithubId(9), &login("hana")).await.unwrap();
    assert!(f.access.register(&hana, &link).await.unwrap());
    let hana = f
        .provisioner
        .store()
        .user(GithubId(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hana.registered_via.as_deref(), Some("link: one seat"));
    assert!(!f.access.register(&hana, &link).await.unwrap());
    let ivan = f.access.log_in(GithubId(10), &login("ivan")).await.unwrap();
    assert!(matches!(
        f.access.register(&ivan, &link).await,
        Err(AccessError::LinkRanOut)
    ));
    // The configured link has no limit, but a revocation sticks.
    assert!(
        f.access
            .register(&ivan, &OpenedLink::Configured)
            .await
            .unwrap()
    );
    let revoked = f.access.revoke(&login("ivan"), "cli", "-").await.unwrap();
    let ivan = revoked.user.unwrap();
    assert!(matches!(
        f.access.register(&ivan, &OpenedLink::Configured).await,
        Err(AccessError::Refused {
            why: Refusal::Withdrawn,
            ..
        })
    ));
}
