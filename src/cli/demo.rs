//! `demo`: the whole product on 127.0.0.1 with a simulated cloud, a demo
//! login and a temporary database.

use crate::app::{self, Application, Options};
use crate::config::{Backend, Config, ConfigError};
use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Where to listen (loopback only); default: server.bind.
    #[arg(long, value_name = "HOST:PORT")]
    bind: Option<SocketAddr>,
}

pub(super) async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    if !config.server.bind.ip().is_loopback() {
        return Err(ConfigError {
            key: "server.bind".into(),
            problem: format!(
                "the demo listens on loopback only, and {} is not",
                config.server.bind
            ),
            fix: "use 127.0.0.1:PORT (the demo login lets anyone in)".into(),
        }
        .into());
    }
    let dir = tempfile::Builder::new()
        .prefix("stackbinder-demo-")
        .tempdir()
        .context("cannot create a temporary directory for the demo database")?;
    config.database.url = format!("sqlite://{}", dir.path().join("demo.db").display());
    config.cloud.backend = Backend::Simulated;
    config
        .cloud
        .floating_ip_pool
        .get_or_insert_with(|| "public".into());
    config.registration.secret_file = None;
    config.registration.secret = Some(SecretString::from(crate::secret::generate()));
    // What the simulated VM itself takes, so the launch times the status
    // page shows can be read against it.
    let timings = crate::cloud::simulated::Timings::from_config(&config.simulator);
    let time_scale = config.simulator.time_scale;
    let app = Application::build(
        config,
        Options {
            demo_login: true,
            cloud: None,
            drive_in_background: true,
            public_url_from_bind: true,
        },
    )
    .await?;
    let url = app.public_url().clone();
    let secret = app
        .registration_secret()
        .expect("the demo sets a registration secret");
    println!("stackbinder demo (simulated cloud, demo login, temporary database)");
    println!();
    println!("  open:              {url}");
    println!(
        "  registration link: {}register/{}",
        url,
        secret.expose_secret()
    );
    println!();
    println!(
        "  simulated VMs:     {:.1} s for a cold launch (boot, clone, build, start), {:.2} s for a prebuilt start on a pool VM (clone, cached start): a real cloud's timings times {time_scale}",
        timings.cold_launch().as_secs_f64(),
        timings.prebuilt_launch().as_secs_f64(),
    );
    println!();
    println!(
        "Log in with any name, open the registration link, then launch. Ctrl-C stops the demo."
    );
    let result = app.run_until_stopped(app::shutdown_signal()).await;
    drop(dir);
    result
}
