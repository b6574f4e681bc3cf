//! `users`: the allowlist, through the `Access` service.

use super::links;
use super::table::{Column, Table};
use crate::access::Access;
use crate::app;
use crate::config::Config;
use crate::domain::Login;
use crate::provision::Purge;
use crate::store::{AllowOutcome, Imported};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(super) enum UsersCommand {
    /// Registered users and pending invitations.
    List,
    /// Allow GitHub logins (they are registered at their next login).
    Add {
        #[arg(required = true)]
        logins: Vec<String>,
    },
    /// Take a login off the allowlist and delete their VM; their storage
    /// is kept unless --purge.
    #[command(alias = "revoke")]
    Remove {
        login: String,
        /// Delete their storage (home volume) too, and everything on it.
        #[arg(long)]
        purge: bool,
    },
    /// Allow every login in FILE (the old tool's allowed_users.cfg: one
    /// GitHub login per line; blank lines and # comments are skipped).
    Import { file: PathBuf },
    /// Registration links.
    #[command(subcommand)]
    Link(links::LinkCommand),
}

const USERS: Table = Table(&[
    Column::left("LOGIN", 40, " "),
    Column::right("GITHUB ID", 12, "  "),
    Column::left("REGISTERED", 26, " "),
    Column::last("registered via"),
]);

pub(super) async fn run(config: Config, cmd: UsersCommand) -> anyhow::Result<()> {
    let provisioner = app::provisioner(&config).await?;
    let access = Access::load(&config, &provisioner).await?;
    match cmd {
        UsersCommand::List => list(&provisioner).await?,
        UsersCommand::Add { logins } => {
            for raw in logins {
                let login = parse_login(&raw)?;
                match access.allow_login(&login, "cli").await? {
                    AllowOutcome::Registered => println!("{login}: registered"),
                    AllowOutcome::AlreadyRegistered => println!("{login}: already registered"),
                    AllowOutcome::Invited => {
                        println!("{login}: invited; registered at their first login")
                    }
                }
            }
        }
        UsersCommand::Import { file } => import(&access, &file).await?,
        UsersCommand::Link(cmd) => links::run(&config, &access, provisioner.store(), cmd).await?,
        UsersCommand::Remove { login, purge } => {
            let login = parse_login(&login)?;
            let revoked = access
                .revoke(&login, "cli", "its owner was removed from the allowlist")
                .await?;
            match revoked.user {
                Some(user) => {
                    println!("{login}: removed from the allowlist");
                    if let Some(vm) = revoked.vm {
                        println!("{login}: their VM {} is being deleted", vm.id);
                    }
                    println!("{login}: {}", storage(&provisioner, &user, purge).await?);
                }
                None if revoked.uninvited => println!("{login}: invitation withdrawn"),
                None => bail!("{login} is neither a user nor invited"),
            }
        }
    }
    Ok(())
}

/// What became of a revoked user's storage, in words.
async fn storage(
    provisioner: &crate::provision::Provisioner,
    user: &crate::store::User,
    purge: bool,
) -> anyhow::Result<String> {
    let login = &user.login;
    if !purge {
        return Ok(
            match provisioner.store().home_volume(user.github_id).await? {
                Some(v) => format!(
                    "their storage (volume {}, {} GB) is kept; `users remove {login} --purge` \
                 or `storage delete {login}` deletes it",
                    v.volume_id, v.size_gb
                ),
                None => "they have no storage".into(),
            },
        );
    }
    let purged = provisioner
        .purge_storage(user.github_id)
        .await
        .with_context(|| format!("cannot delete the storage of {login}"))?;
    Ok(match purged {
        Purge::Nothing => "they have no storage".into(),
        Purge::Deleted(v) => format!("their storage (volume {}) is deleted", v.volume_id),
        Purge::Later(v) => format!(
            "their storage (volume {}) is deleted once their VM is gone",
            v.volume_id
        ),
    })
}

fn parse_login(raw: &str) -> anyhow::Result<Login> {
    Login::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))
}

async fn list(provisioner: &crate::provision::Provisioner) -> anyhow::Result<()> {
    let store = provisioner.store();
    let users = store.list_users().await?;
    let invites = store.list_invites().await?;
    println!("{}", USERS.header());
    for u in users.iter().filter(|u| u.is_registered()) {
        let registered = u
            .registered_at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let via = u.registered_via.as_deref().unwrap_or("");
        println!(
            "{}",
            USERS.row(&[&u.login, &u.github_id, &registered, &via])
        );
    }
    for i in &invites {
        let invited = i.invited_at.format("%Y-%m-%d %H:%M UTC").to_string();
        let by = format!("invited by {} (not logged in yet)", i.invited_by);
        println!("{}", USERS.row(&[&i.login, &"-", &invited, &by]));
    }
    let unregistered = users.iter().filter(|u| !u.is_registered()).count();
    println!(
        "\n{} registered, {} invited, {} logged in without registering",
        users.len() - unregistered,
        invites.len(),
        unregistered
    );
    Ok(())
}

/// Allow every login of a file (one per line; blank lines and `#`
/// comments skipped), leaving out the revoked ones.
async fn import(access: &Access, file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (mut added, mut withdrawn, mut bad) = (0, 0, 0);
    for (number, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        match Login::parse(entry) {
            Ok(login) => match access.import_login(&login, "import").await? {
                Imported::LeftOutRevoked => {
                    println!(
                        "{login}: left out, their access was revoked \
                             (`stackbinder users add {login}` allows them again)"
                    );
                    withdrawn += 1;
                }
                Imported::Allowed(_) => added += 1,
            },
            Err(e) => {
                eprintln!("{}:{}: {entry:?} skipped: {e}", file.display(), number + 1);
                bad += 1;
            }
        }
    }
    println!(
        "{added} login(s) allowed, {withdrawn} revoked login(s) left out, \
         {bad} line(s) skipped"
    );
    if bad > 0 {
        bail!("some lines of {} are not GitHub logins", file.display());
    }
    Ok(())
}
