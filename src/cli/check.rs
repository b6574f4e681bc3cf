//! `check`: the cloud, item by item, with a fix for each that fails.

use crate::app;
use crate::config::Config;
use anyhow::bail;

/// This installation's id for `check`, from the database, which `check`
/// never creates: run by another user (root, say) it would make a file the
/// server could not write. Not a check that can fail.
async fn installation_line(database_url: &str) -> String {
    use sqlx::sqlite::SqliteConnectOptions;
    use std::str::FromStr;
    // A PostgreSQL database is made by its operator, not by us.
    let exists = crate::store::is_postgres_url(database_url)
        || SqliteConnectOptions::from_str(database_url).is_ok_and(|o| o.get_filename().is_file());
    if !exists {
        return format!(
            "installation: none yet (made with the database {database_url} by the first `stackbinder serve`)"
        );
    }
    let id = match crate::store::Store::connect(database_url).await {
        Ok(store) => store.installation_id().await,
        Err(e) => Err(e),
    };
    match id {
        Ok(id) => format!(
            "installation {id}: stackbinder touches only what carries {}={id}",
            crate::cloud::META_INSTANCE
        ),
        Err(e) => format!("installation: unknown ({e})"),
    }
}

/// One line per item, OK or FAIL with its fix; fails if any item does.
pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    let cloud = app::cloud_from_config(&config);
    println!("checking the {} cloud", cloud.kind());
    println!("{}", installation_line(&config.database.url).await);
    let mut items = cloud.check().await;
    let profiles: Vec<_> = config
        .profiles
        .iter()
        .map(|p| {
            let shape = crate::provision::profile_shape(&config.cloud, Some(p));
            (p.name.to_string(), shape)
        })
        .collect();
    items.extend(cloud.check_profiles(&profiles).await);
    items.extend(cloud.check_storage(&config.storage).await);
    for item in &items {
        let mark = if item.ok { "OK  " } else { "FAIL" };
        println!("{mark} {}: {}", item.what, item.detail);
        if let Some(fix) = &item.fix {
            println!("     fix: {fix}");
        }
    }
    let failed = items.iter().filter(|i| !i.ok).count();
    if failed > 0 {
        bail!("{failed} of {} checks failed", items.len());
    }
    println!("all {} checks passed", items.len());
    Ok(())
}
