//! `[cloud]`: which cloud stackbinder drives, and what each VM is made of
//! there.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

/// Which cloud stackbinder drives. OpenStack unless the simulated cloud is
/// asked for by name: an operator who fills in `[cloud]` and forgets this
/// key must not get VMs that do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An in-process cloud that behaves like Nova (`demo`, and tests).
    Simulated,
    /// A real OpenStack cloud (Keystone, Nova, Cinder, Neutron, Glance).
    #[default]
    Openstack,
}

/// How users reach the Jupyter server on their VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JupyterAccess {
    /// Through stackbinder's proxy at `/user/<login>/`, to the VM's fixed
    /// address: VMs get no floating IP.
    #[default]
    Proxy,
    /// Straight to a floating IP on each VM, for a server that cannot reach
    /// the tenant network.
    FloatingIp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    pub backend: Backend,
    /// Proxied (no floating IPs) or straight to a floating IP per VM.
    pub jupyter_access: JupyterAccess,
    /// Entry in clouds.yaml; empty means the `OS_*` environment.
    pub cloud: String,
    pub image: String,
    pub flavor: String,
    pub volume_size_gb: NonZeroU32,
    pub delete_volume_on_termination: bool,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
    pub network: Option<String>,
    /// The availability zone of the VMs and of the users' home volumes;
    /// unset: the cloud's default zone.
    pub availability_zone: Option<String>,
    pub floating_ip_pool: Option<String>,
    pub release_floating_ip: bool,
    pub name_prefix: String,
    /// At most this many VMs at once; 0 pauses launches (maintenance);
    /// unset means no limit but the cloud's quota.
    pub max_vms: Option<u32>,
    /// Region to use; unset: the one of clouds.yaml / `OS_REGION_NAME`.
    pub region: Option<String>,
    /// Endpoint interface (public, internal, admin); unset: as configured
    /// in clouds.yaml / `OS_INTERFACE`, else public.
    pub interface: Option<String>,
    /// Every OpenStack API call gives up after this long.
    pub request_timeout_seconds: NonZeroU64,
    /// At most this many OpenStack API calls in flight at once.
    pub max_concurrent_requests: NonZeroUsize,
}

impl CloudConfig {
    /// Every OpenStack API call gives up after this long.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.get())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let prefix_ok = self
            .name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok || self.name_prefix.len() > 20 {
            return Err(ConfigError::new(
                "cloud.name_prefix",
                format!("{:?} is not usable in a server name", self.name_prefix),
                "use up to 20 letters, digits, - or _ (e.g. \"binder-\")",
            ));
        }
        if let Some(interface) = &self.interface
            && !matches!(interface.as_str(), "public" | "internal" | "admin")
        {
            return Err(ConfigError::new(
                "cloud.interface",
                format!("{interface:?} is not an endpoint interface"),
                "use \"public\", \"internal\" or \"admin\", or leave it unset",
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "backend" => Some("use \"simulated\" or \"openstack\""),
            "jupyter_access" => Some("use \"proxy\" or \"floating_ip\""),
            "volume_size_gb" => Some("set it to the boot volume size in GB, e.g. 150"),
            "request_timeout_seconds" => {
                Some("use a positive number of seconds, e.g. request_timeout_seconds = 30")
            }
            "max_concurrent_requests" => {
                Some("use a positive number, e.g. max_concurrent_requests = 8")
            }
            _ => None,
        }
    }
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            jupyter_access: JupyterAccess::Proxy,
            cloud: String::new(),
            image: "stackbinder-snapshot".into(),
            flavor: "m1.large".into(),
            volume_size_gb: const { NonZeroU32::new(150).unwrap() },
            delete_volume_on_termination: true,
            key_name: None,
            security_groups: vec!["ssh-whitelist".into(), "Open-top".into()],
            network: None,
            availability_zone: None,
            floating_ip_pool: None,
            release_floating_ip: true,
            name_prefix: String::new(),
            max_vms: None,
            region: None,
            interface: None,
            request_timeout_seconds: const { NonZeroU64::new(30).unwrap() },
            max_concurrent_requests: const { NonZeroUsize::new(8).unwrap() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load_str;

    #[test]
    fn an_unknown_key_is_refused() {
        let e = load_str("[cloud]\nflavour = \"x\"").unwrap_err();
        assert_eq!(e.key, "cloud.flavour");
        assert!(e.problem.contains("not a known key"), "{e}");
    }

    #[test]
    fn the_openstack_backend_and_its_keys_are_understood() {
        let c = load_str(
            "[cloud]\nbackend = \"openstack\"\ncloud = \"mycloud\"\nregion = \"RegionTwo\"\ninterface = \"internal\"\nrequest_timeout_seconds = 10\n",
        )
        .unwrap();
        assert_eq!(c.cloud.backend, Backend::Openstack);
        assert_eq!(c.cloud.region.as_deref(), Some("RegionTwo"));
        assert_eq!(c.cloud.request_timeout().as_secs(), 10);
        let e = load_str("[cloud]\ninterface = \"private\"").unwrap_err();
        assert_eq!(e.key, "cloud.interface");
        let e = load_str("[cloud]\nbackend = \"aws\"").unwrap_err();
        assert!(e.fix.contains("openstack"), "{e}");
    }

    #[test]
    fn serve_defaults_to_the_openstack_backend() {
        assert_eq!(load_str("").unwrap().cloud.backend, Backend::Openstack);
        let c = load_str("[cloud]\nbackend = \"simulated\"").unwrap();
        assert_eq!(c.cloud.backend, Backend::Simulated);
    }

    #[test]
    fn jupyter_access_defaults_to_the_proxy_and_takes_floating_ip() {
        let c = load_str("").unwrap();
        assert_eq!(c.cloud.jupyter_access, JupyterAccess::Proxy);
        let c = load_str("[cloud]\njupyter_access = \"floating_ip\"").unwrap();
        assert_eq!(c.cloud.jupyter_access, JupyterAccess::FloatingIp);
        let e = load_str("[cloud]\njupyter_access = \"vpn\"").unwrap_err();
        assert_eq!(e.key, "cloud.jupyter_access");
        assert!(e.fix.contains("floating_ip"), "{e}");
    }

    #[test]
    fn a_server_name_prefix_is_short_and_plain() {
        assert_eq!(
            load_str("[cloud]\nname_prefix = \"binder-\"")
                .unwrap()
                .cloud
                .name_prefix,
            "binder-"
        );
        for bad in ["a b", "x;reboot", "a-very-long-prefix-of-21"] {
            let e = load_str(&format!("[cloud]\nname_prefix = \"{bad}\"")).unwrap_err();
            assert_eq!(e.key, "cloud.name_prefix", "{bad}");
        }
    }
}
