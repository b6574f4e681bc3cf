//! `stackbinder check`: one line per thing the configuration needs from
//! the cloud, each with the fix when it is missing.

use super::OpenStackCloud;
use super::resolve::{LookupError, pick_network, pick_pool};
use crate::cloud::CheckItem;

fn line<T>(what: &str, result: Result<T, LookupError>, ok: impl FnOnce(T) -> String) -> CheckItem {
    match result {
        Ok(v) => CheckItem::ok(what, ok(v)),
        Err(LookupError::Missing { problem, fix }) => CheckItem::fail(what, problem, fix),
        Err(LookupError::Api(e)) => CheckItem::fail(
            what,
            e.to_string(),
            "make sure the cloud answers, then run `stackbinder check` again",
        ),
    }
}

impl OpenStackCloud {
    pub(super) async fn run_check(&self) -> Vec<CheckItem> {
        let c = &self.config;
        let mut items = Vec::new();
        let auth = match self.project_id().await {
            Ok(project) => CheckItem::ok(
                "credentials",
                format!(
                    "authenticated with {:?}, project {project}",
                    self.api.credentials()
                ),
            ),
            Err(e) => CheckItem::fail(
                "credentials",
                e.to_string(),
                "set cloud.cloud to an entry of clouds.yaml (or OS_CLIENT_CONFIG_FILE), or source the project's RC file (OS_AUTH_URL, OS_USERNAME/OS_PASSWORD or OS_APPLICATION_CREDENTIAL_ID/_SECRET)",
            ),
        };
        let authenticated = auth.ok;
        items.push(auth);
        if !authenticated {
            return items;
        }
        items.push(line("image", self.image(&c.image).await, |id| {
            format!("{:?} is active ({id})", c.image)
        }));
        let flavor = self.flavor(&c.flavor).await;
        let flavor_ok = flavor.as_ref().ok().cloned();
        items.push(line("flavor", flavor, |f| {
            format!("{} ({} VCPUs, {} MiB RAM)", f.name, f.vcpus, f.ram)
        }));
        items.push(match &c.key_name {
            Some(key) => line("key pair", self.key_pair(key).await, |_| {
                format!("{key:?} exists")
            }),
            None => CheckItem::ok("key pair", "none configured (cloud.key_name is unset)"),
        });
        let groups = &c.security_groups;
        items.push(line(
            "security groups",
            self.security_groups(groups).await,
            |_| {
                if groups.is_empty() {
                    "none configured".into()
                } else {
                    format!("{} exist", groups.join(", "))
                }
            },
        ));
        match self.networks().await {
            Ok(networks) => {
                items.push(line(
                    "network",
                    pick_network(&networks, c.network.as_deref()),
                    |id| format!("VMs attach to {id}"),
                ));
                items.push(match &c.floating_ip_pool {
                    Some(pool) => line("floating IP pool", pick_pool(&networks, pool), |id| {
                        format!("{pool:?} is an external network ({id})")
                    }),
                    None => CheckItem::ok(
                        "floating IP pool",
                        "none configured: VMs are reached at their fixed address",
                    ),
                });
            }
            Err(e) => items.push(line("network", Err::<(), _>(e), |_| String::new())),
        }
        if items.iter().all(|i| i.ok) && flavor_ok.is_some() {
            match self.resolved().await {
                Ok(resolved) => match self.usage(resolved, None).await {
                    Ok(usage) => {
                        let full: Vec<String> = usage
                            .iter()
                            .filter(|u| !u.has_room())
                            .map(|u| u.describe())
                            .collect();
                        items.push(if full.is_empty() {
                            CheckItem::ok(
                                "quotas",
                                format!(
                                    "room for another VM: {}",
                                    usage
                                        .iter()
                                        .map(|u| u.describe().replace("this project uses ", ""))
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                ),
                            )
                        } else {
                            CheckItem::fail(
                                "quotas",
                                full.join("; "),
                                "delete unused servers, volumes or floating IPs, or ask the cloud's admins for a larger quota",
                            )
                        });
                    }
                    Err(e) => items.push(line("quotas", Err::<(), _>(e.into()), |_| String::new())),
                },
                Err(e) => items.push(line("quotas", Err::<(), _>(e), |_| String::new())),
            }
        } else {
            items.push(CheckItem::fail(
                "quotas",
                "not checked: fix the lines above first",
                "fix the failures above, then run `stackbinder check` again",
            ));
        }
        items
    }
}
