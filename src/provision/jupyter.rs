//! Where a VM's Jupyter is, for stackbinder and for its owner.
//!
//! Every VM's Jupyter serves under `/user/<login>/`
//! (`--ServerApp.base_url`, set by `cloud-init/launch.sh`), the route of
//! stackbinder's proxy, so nothing between the browser and Jupyter rewrites
//! a path. stackbinder reaches it at the VM's fixed address with the proxy
//! (`cloud.jupyter_access = "proxy"`), or at its floating IP without; the
//! owner's link goes through the proxy on `server.public_url`, or straight
//! to the floating IP.

use crate::config::JupyterAccess;
use crate::store::VmRecord;
use std::net::{IpAddr, SocketAddr};
use url::Url;

/// The path Jupyter serves under on the VM of `login`, and the proxy's
/// route to it: `/user/<login>/`.
pub fn base_path(login: &str) -> String {
    format!("/user/{login}/")
}

/// Where the VM's Jupyter listens, as stackbinder reaches it: the fixed
/// address behind the proxy, the floating IP without; the port the VM
/// reported. `None` until both are known.
pub fn address(vm: &VmRecord, access: JupyterAccess) -> Option<SocketAddr> {
    let address = match access {
        JupyterAccess::Proxy => vm.address.as_deref()?,
        JupyterAccess::FloatingIp => vm.public_address()?,
    };
    let ip: IpAddr = address.parse().ok()?;
    Some(SocketAddr::new(ip, vm.port?))
}

/// `http://<address>:<port>/user/<login>/`: where stackbinder reaches the
/// VM's Jupyter (readiness probe, idle checks), once the address and the
/// port are known.
pub fn upstream(vm: &VmRecord, access: JupyterAccess) -> Option<Url> {
    let addr = address(vm, access)?;
    Url::parse(&format!(
        "http://{addr}{}",
        base_path(vm.owner_login.as_str())
    ))
    .ok()
}

/// The link the owner opens: the proxied
/// `<public_url>/user/<login>/<urlpath>?token=<token>`, or with floating
/// IPs the VM's own `http://<floating IP>:<port>/user/<login>/<urlpath>?token=`.
/// The token lets the browser in once; Jupyter then sets its own cookie.
/// When the environment lacks the interface the launch asked for, the link
/// opens Jupyter's default instead of a page that is not there.
pub fn owner_link(vm: &VmRecord, access: JupyterAccess, public_url: &Url) -> Option<Url> {
    let base = match access {
        JupyterAccess::Proxy => {
            // Known only once the VM is up, like the floating IP's link.
            upstream(vm, access)?;
            public_url
                .join(base_path(vm.owner_login.as_str()).trim_start_matches('/'))
                .ok()?
        }
        JupyterAccess::FloatingIp => upstream(vm, access)?,
    };
    let path = match vm.ide_missing_at {
        Some(_) => "",
        None => vm.url_path.as_str(),
    };
    let mut url = base.join(path).ok()?;
    url.query_pairs_mut()
        .append_pair("token", &vm.jupyter_token);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VmState;

    fn vm(floating_ip: Option<&str>) -> VmRecord {
        VmRecord {
            owner_login: crate::domain::Login::parse("Grace-H").unwrap(),
            name: "Grace-H".into(),
            url_path: crate::domain::UrlPath::parse("lab/tree/index.ipynb").unwrap(),
            server_id: Some("s".into()),
            address: Some("10.0.0.7".into()),
            floating_ip: floating_ip.map(str::to_owned),
            floating_ip_id: floating_ip.map(|_| "f".to_owned()),
            port: Some(8888),
            jupyter_token: "t0k".into(),
            ..VmRecord::example(VmState::Ready)
        }
    }

    #[test]
    fn the_proxy_reaches_the_fixed_address_and_links_through_stackbinder() {
        let public = Url::parse("https://binder.example.org").unwrap();
        let vm = vm(None);
        assert_eq!(
            upstream(&vm, JupyterAccess::Proxy).unwrap().as_str(),
            "http://10.0.0.7:8888/user/Grace-H/"
        );
        assert_eq!(
            owner_link(&vm, JupyterAccess::Proxy, &public)
                .unwrap()
                .as_str(),
            "https://binder.example.org/user/Grace-H/lab/tree/index.ipynb?token=t0k"
        );
    }

    #[test]
    fn floating_ips_are_reached_and_linked_directly() {
        let public = Url::parse("https://binder.example.org").unwrap();
        let vm = vm(Some("192.0.2.9"));
        assert_eq!(
            owner_link(&vm, JupyterAccess::FloatingIp, &public)
                .unwrap()
                .as_str(),
            "http://192.0.2.9:8888/user/Grace-H/lab/tree/index.ipynb?token=t0k"
        );
        // Even if an older launch left a floating IP, the proxy uses the
        // fixed address.
        assert_eq!(
            upstream(&vm, JupyterAccess::Proxy).unwrap().as_str(),
            "http://10.0.0.7:8888/user/Grace-H/"
        );
    }

    #[test]
    fn a_missing_interface_is_not_linked_to() {
        let public = Url::parse("https://binder.example.org").unwrap();
        let vm = VmRecord {
            url_path: crate::domain::Ide::Rstudio.url_path(),
            ide: Some(crate::domain::Ide::Rstudio),
            ide_missing_at: Some(chrono::Utc::now()),
            ..vm(None)
        };
        assert_eq!(
            owner_link(&vm, JupyterAccess::Proxy, &public)
                .unwrap()
                .as_str(),
            "https://binder.example.org/user/Grace-H/?token=t0k"
        );
    }

    #[test]
    fn there_is_no_link_before_the_port_is_known() {
        let public = Url::parse("https://binder.example.org").unwrap();
        let mut vm = vm(None);
        vm.port = None;
        assert!(owner_link(&vm, JupyterAccess::Proxy, &public).is_none());
        assert!(upstream(&vm, JupyterAccess::FloatingIp).is_none());
    }

    #[test]
    fn an_ipv6_address_is_bracketed() {
        let mut vm = vm(None);
        vm.address = Some("fd00::7".into());
        assert_eq!(
            upstream(&vm, JupyterAccess::Proxy).unwrap().as_str(),
            "http://[fd00::7]:8888/user/Grace-H/"
        );
    }
}
