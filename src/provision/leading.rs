//! What the replica that holds the driver lease runs (`crate::lease`
//! starts it when the lease is taken and cancels it when it is lost).

use super::Provisioner;
use tokio_util::sync::CancellationToken;

impl Provisioner {
    /// Lead until `cancel`: the driver, with the reconciler, expiry and
    /// idle culling it runs (unless `drive` is false: tests step it).
    pub async fn lead(self, drive: bool, cancel: CancellationToken) {
        if drive {
            self.run_until_stopped(cancel).await;
        }
    }
}
