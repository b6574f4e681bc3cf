//! `storage`: the users' home volumes, listed and deleted through the
//! provisioner (the same rules as the user's own "delete my storage").

use super::table::{Column, Table};
use crate::app;
use crate::config::Config;
use crate::domain::Login;
use crate::web::human_bytes;
use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(super) enum StorageCommand {
    /// Every user's home volume.
    List,
    /// Delete a user's home volume and everything on it.
    Delete { login: String },
}

const VOLUMES: Table = Table(&[
    Column::left("OWNER", 20, " "),
    Column::left("VOLUME", 36, "  "),
    Column::right("GB", 5, "  "),
    Column::left("ZONE", 12, " "),
    Column::right("USED", 8, "  "),
    Column::last("LAST ATTACHED"),
]);

pub(super) async fn run(config: Config, cmd: StorageCommand) -> anyhow::Result<()> {
    let provisioner = app::provisioner(&config).await?;
    let store = provisioner.store();
    match cmd {
        StorageCommand::List => {
            let volumes = store.home_volumes().await?;
            println!("{}", VOLUMES.header());
            for v in &volumes {
                let zone = v.volume.availability_zone.as_deref().unwrap_or("-");
                let used = v.volume.used_bytes.map_or_else(|| "-".into(), human_bytes);
                let attached = v
                    .volume
                    .last_attached_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{}",
                    VOLUMES.row(&[
                        &v.login,
                        &v.volume.volume_id,
                        &v.volume.size_gb,
                        &zone,
                        &used,
                        &attached
                    ])
                );
            }
            println!("\n{} home volume(s)", volumes.len());
        }
        StorageCommand::Delete { login } => {
            let login = Login::parse(&login).map_err(|e| anyhow::anyhow!("{login:?}: {e}"))?;
            let Some(user) = store.user_by_login(&login).await? else {
                bail!("{login} is not a known user");
            };
            let gone = provisioner
                .delete_storage(user.github_id)
                .await
                .with_context(|| format!("cannot delete the storage of {login}"))?;
            println!(
                "deleted the storage of {login}: volume {} ({} GB)",
                gone.volume_id, gone.size_gb
            );
        }
    }
    Ok(())
}
