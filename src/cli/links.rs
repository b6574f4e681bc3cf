//! `users link`: registration links, through the `Access` service.

use super::table::{Column, Table};
use crate::access::{Access, LinkLabel, LinkRequest, LinkRevocation};
use crate::config::Config;
use crate::store::Store;
use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(super) enum LinkCommand {
    /// Make a new registration link and print it (it is shown only once).
    Create {
        /// What the link is for, e.g. a course.
        #[arg(long)]
        label: String,
        /// The link stops working after this many days.
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// The link stops working after this many registrations.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        max_uses: Option<i64>,
    },
    /// All links with their use counts and state.
    List,
    /// Stop a link from working.
    Revoke { id: i64 },
}

const LINKS: Table = Table(&[
    Column::right("ID", 4, "  "),
    Column::left("LABEL", 30, " "),
    Column::left("STATE", 9, " "),
    Column::right("USES", 9, "  "),
    Column::left("EXPIRES", 17, " "),
    Column::last("CREATED"),
]);

pub(super) async fn run(
    config: &Config,
    access: &Access,
    store: &Store,
    cmd: LinkCommand,
) -> anyhow::Result<()> {
    match cmd {
        LinkCommand::Create {
            label,
            expires_in_days,
            max_uses,
        } => {
            let Some(label) = LinkLabel::parse(&label) else {
                bail!("--label must be 1 to 100 characters");
            };
            let request = LinkRequest {
                label,
                expires_in_days: expires_in_days.map(i64::from),
                max_uses,
            };
            let created = access.create_link(request, "cli").await?;
            println!("link {} ({}) created:", created.link.id, created.link.label);
            println!("  {}", created.url);
            println!("Keep it: only its hash is stored, it cannot be shown again.");
        }
        LinkCommand::List => {
            let now = Utc::now();
            println!("{}", LINKS.header());
            for link in store.list_links().await? {
                let uses = match link.max_uses {
                    Some(max) => format!("{}/{max}", link.uses),
                    None => link.uses.to_string(),
                };
                let state = format!("{:?}", link.state(now)).to_lowercase();
                let expires = link
                    .expires_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                let created = link.created_at.format("%Y-%m-%d %H:%M");
                println!(
                    "{}",
                    LINKS.row(&[&link.id, &link.label, &state, &uses, &expires, &created])
                );
            }
            if config.registration.secret.is_some() || config.registration.secret_file.is_some() {
                println!("(and the link of registration.secret in the configuration)");
            }
        }
        LinkCommand::Revoke { id } => match access.revoke_link(id).await? {
            LinkRevocation::Revoked => println!("link {id} revoked"),
            LinkRevocation::AlreadyRevoked => println!("link {id} was already revoked"),
            LinkRevocation::NoSuchLink => bail!("there is no link {id}"),
        },
    }
    Ok(())
}
