//! Who gets through: the owner of a ready VM, to that VM only. Everyone
//! else (another user, no VM, an unknown login, a VM not ready yet) gets
//! the same answer, so nothing can be learnt about other users.

use super::{ProxyError, Upstream};
use crate::config::JupyterAccess;
use crate::domain::{GithubId, Login, VmState};
use crate::provision::jupyter;
use crate::store::{Store, VmRecord};

/// The VM a request for `/user/<login>/` of `user` goes to: the user's own
/// live VM, when it is ready and `login` is its owner's, at the address
/// the proxy reaches it on (`provision::jupyter`: its fixed address and the
/// port it reported; a VM is ready only once its Jupyter answered there).
pub fn upstream_for(vm: Option<&VmRecord>, login: &Login) -> Option<Upstream> {
    let vm = vm?;
    if vm.state != VmState::Ready || vm.owner_login != login.as_str() {
        return None;
    }
    Some(Upstream {
        vm: vm.id,
        addr: jupyter::address(vm, JupyterAccess::Proxy)?,
    })
}

/// `upstream_for` with the user's VM from the store.
pub async fn upstream_of(
    store: &Store,
    user: GithubId,
    login: &Login,
) -> Result<Upstream, ProxyError> {
    let vm = store
        .live_vm_of(user)
        .await
        .map_err(|e| ProxyError::Internal(e.into()))?;
    upstream_for(vm.as_ref(), login).ok_or(ProxyError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn vm(state: VmState, port: Option<u16>) -> VmRecord {
        VmRecord {
            owner_login: Login::parse("Ada").unwrap(),
            address: Some("10.0.0.7".into()),
            floating_ip: Some("192.0.2.9".into()),
            floating_ip_id: Some("f".into()),
            port,
            ..VmRecord::example(state)
        }
    }

    #[test]
    fn only_the_owners_ready_vm_is_reached_at_its_fixed_address() {
        let ada = Login::parse("Ada").unwrap();
        let bob = Login::parse("bob").unwrap();
        let fixed: SocketAddr = "10.0.0.7:8888".parse().unwrap();
        let cases = [
            (vm(VmState::Ready, Some(8888)), &ada, Some(fixed)),
            (vm(VmState::Ready, Some(8888)), &bob, None),
            (vm(VmState::Building, Some(8888)), &ada, None),
            (vm(VmState::Ready, None), &ada, None),
        ];
        for (vm, login, expected) in cases {
            let got = upstream_for(Some(&vm), login).map(|u| u.addr);
            assert_eq!(got, expected, "{:?} {:?} for {login}", vm.state, vm.port);
        }
        assert!(upstream_for(None, &ada).is_none());
    }
}
