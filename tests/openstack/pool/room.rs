//! The launch page's room with the pool on: a launch of the default
//! profile may claim a ready pool VM, which needs no more quota.

use super::{spawn, standard_and_big};
use crate::app::web_app::REPO;
use crate::helpers::offer;

#[tokio::test]
async fn the_room_on_the_launch_page_ignored_the_ready_pool_vms() {
    // Arrange: two ready pool VMs of "standard" (100 GB each), and a
    // volume quota with 50 GB left: no new VM of either size fits.
    let app = spawn(|c| {
        c.pool.size = 2;
        c.profiles = standard_and_big();
    })
    .await;
    app.fill(2).await;
    app.fake.world().limits.gigabytes = 250;

    // Act
    let page = app.web.get(&format!("/VM_start?giturl={REPO}")).await;

    // Assert: two launches of the default profile take the pool's VMs; a
    // launch of "big" boots its own, for which the quota has no room.
    assert!(
        offer(&page, "standard").contains("2 of this size still fit"),
        "{page}"
    );
    assert!(
        offer(&page, "big").contains("none of this size fits in the quota"),
        "{page}"
    );
}
