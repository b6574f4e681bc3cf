//! What the replica that holds the driver lease runs (`crate::lease`
//! starts it when the lease is taken and cancels it when it is lost).

use super::Provisioner;
use tokio_util::sync::CancellationToken;

impl Provisioner {
    /// Lead until `cancel`: the driver, with the reconciler, expiry and
    /// idle culling it runs, woken by what any replica records (unless
    /// `drive` is false: tests step it).
    pub async fn lead(self, drive: bool, cancel: CancellationToken) {
        if !drive {
            return;
        }
        let store = self.inner.store.clone();
        let woken = self.clone();
        tokio::join!(
            self.run_until_stopped(cancel.clone()),
            store.listen_for_wakes(|| woken.wake(), &cancel),
        );
    }
}
