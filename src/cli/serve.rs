//! `serve`: the web server and the provisioner, on the configured cloud.

use crate::app::{self, Application, Options};
use crate::config::Config;

pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    let app = Application::build(
        config,
        Options {
            demo_login: false,
            cloud: None,
            drive_in_background: true,
            public_url_from_bind: false,
        },
    )
    .await?;
    if app.provisioner().cloud().kind() == "simulated" {
        tracing::warn!(
            "cloud.backend = \"simulated\": this server starts no real VMs; \
             set cloud.backend = \"openstack\" (the default) to use the cloud in [cloud]"
        );
    }
    tracing::info!(address = %app.address(), public_url = %app.public_url(), "stackbinder serving");
    app.run_until_stopped(app::shutdown_signal()).await
}
