//! Who gets through: the owner of a ready VM, to that VM only. Everyone
//! else (another user, no VM, an unknown login, a VM not ready yet) gets
//! the same answer, so nothing can be learnt about other users.

use super::{ProxyError, Upstream};
use crate::domain::{GithubId, Login, VmState};
use crate::store::{Store, VmRecord};
use std::net::{IpAddr, SocketAddr};

/// The VM a request for `/user/<login>/` of `user` goes to: the user's own
/// live VM, when it is ready and `login` is its owner's. Jupyter's port is
/// the one the VM reported, else `launch.jupyter_port`.
pub fn upstream_for(vm: Option<&VmRecord>, login: &Login, default_port: u16) -> Option<Upstream> {
    let vm = vm?;
    if vm.state != VmState::Ready || vm.owner_login != login.as_str() {
        return None;
    }
    let ip: IpAddr = vm.address.as_deref()?.parse().ok()?;
    Some(Upstream {
        vm: vm.id,
        addr: SocketAddr::new(ip, vm.port.unwrap_or(default_port)),
    })
}

/// `upstream_for` with the user's VM from the store.
pub async fn upstream_of(
    store: &Store,
    user: GithubId,
    login: &Login,
    default_port: u16,
) -> Result<Upstream, ProxyError> {
    let vm = store
        .live_vm_of(user)
        .await
        .map_err(|e| ProxyError::Internal(e.into()))?;
    upstream_for(vm.as_ref(), login, default_port).ok_or(ProxyError::NotFound)
}
