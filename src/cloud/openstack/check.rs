//! `stackbinder check`: one line per thing the configuration needs from
//! the cloud, each with the fix when it is missing.

use super::OpenStackCloud;
use super::proxy_check::{exposure_line, reach_line};
use super::resolve::{LookupError, pick_network, pick_pool};
use crate::cloud::CheckItem;
use crate::config::JupyterAccess;
use crate::host_network::HostNetwork;

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
        let group_ids = self.security_groups(groups).await;
        let found_groups = group_ids.as_ref().ok().cloned();
        items.push(line("security groups", group_ids, |_| {
            if groups.is_empty() {
                "none configured".into()
            } else {
                format!("{} exist", groups.join(", "))
            }
        }));
        let proxied = c.jupyter_access == JupyterAccess::Proxy;
        if proxied && let Some(ids) = found_groups {
            items.push(self.exposure_check(&ids).await);
        }
        match self.networks().await {
            Ok(networks) => {
                let network = pick_network(&networks, c.network.as_deref());
                let network_id = network.as_ref().ok().cloned();
                items.push(line("network", network, |id| format!("VMs attach to {id}")));
                if proxied && let Some(id) = network_id {
                    items.push(self.reach_check(&id).await);
                }
                items.push(match &c.floating_ip_pool {
                    Some(pool) => line("floating IP pool", pick_pool(&networks, pool), |id| {
                        format!("{pool:?} is an external network ({id})")
                    }),
                    None if proxied => CheckItem::ok(
                        "floating IP pool",
                        "not needed: behind the Jupyter proxy VMs get no floating IP",
                    ),
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
                Ok(resolved) => match self
                    .usage(
                        resolved,
                        &resolved.flavor,
                        self.config.volume_size_gb.get(),
                        None,
                    )
                    .await
                {
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

    /// A launch profile's flavor and image exist (and the image is active).
    pub(super) async fn check_profile(&self, name: &str, shape: &crate::cloud::Shape) -> CheckItem {
        let what = format!("profile {name}");
        let found = async {
            let flavor = self.flavor(&shape.flavor).await?;
            let image = self.image(&shape.image).await?;
            Ok((flavor, image))
        }
        .await
        .map_err(|e| match e {
            // The lookups' fixes name `[cloud]`'s keys.
            LookupError::Missing { problem, fix } => LookupError::Missing {
                problem,
                fix: fix
                    .replace("cloud.flavor", &format!("the flavor of profile {name:?}"))
                    .replace("cloud.image", &format!("the image of profile {name:?}")),
            },
            other => other,
        });
        line(
            &what,
            found,
            |(f, image_id): (super::resolve::Flavor, String)| {
                format!(
                    "flavor {} ({} VCPUs, {} MiB RAM), image {:?} is active ({image_id}), {} GB boot volume",
                    f.name, f.vcpus, f.ram, shape.image, shape.volume_size_gb
                )
            },
        )
    }

    /// With the proxy: no configured security group opens Jupyter's port to
    /// the internet.
    async fn exposure_check(&self, group_ids: &[String]) -> CheckItem {
        let port = self.jupyter_port;
        match self.security_group_rules(group_ids).await {
            Ok(groups) => exposure_line(&groups, port),
            Err(e) => line("Jupyter port", Err::<(), _>(e), |_| String::new()),
        }
    }

    /// With the proxy: this host reaches the VM network.
    async fn reach_check(&self, network_id: &str) -> CheckItem {
        let cidrs = match self.subnet_cidrs(network_id).await {
            Ok(cidrs) => cidrs,
            Err(e) => return line("route to the VMs", Err::<(), _>(e), |_| String::new()),
        };
        match HostNetwork::read() {
            Ok(host) => reach_line(network_id, &cidrs, &host),
            Err(e) => CheckItem::fail(
                "route to the VMs",
                format!("cannot read this host's addresses: {e}"),
                "run stackbinder check on the host that runs stackbinder serve",
            ),
        }
    }
}
