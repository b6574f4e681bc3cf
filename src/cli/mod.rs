//! The command line: `serve`, `demo`, `users`, `vm`, `storage`, `image`, `check`, one
//! module per command. Every command goes through the same services as the
//! web pages: `Access` for who gets in, the provisioner for VMs.

mod check;
mod demo;
mod image;
mod links;
mod serve;
mod storage;
mod table;
mod users;
mod vm;

use crate::config::{Config, ConfigError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "stackbinder",
    version,
    about = "Binder-style on-demand Jupyter VMs on OpenStack"
)]
pub struct Cli {
    /// Configuration file (default: built-in defaults and STACKBINDER_* variables).
    #[arg(long, global = true, env = "STACKBINDER_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server and the provisioner.
    Serve,
    /// Run everything on 127.0.0.1 with a simulated cloud and a demo login.
    Demo(demo::DemoArgs),
    /// Manage the allowlist.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Look at and manage VMs.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// The users' home volumes.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Build the snapshot image VMs boot from.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Check the cloud: credentials, image, flavor, key pair, security
    /// groups, network, floating IP pool and quotas (exit 1 on any FAIL).
    Check,
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        match self.dispatch().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                match e.downcast_ref::<ConfigError>() {
                    Some(config) => eprintln!("error: {config}"),
                    None => eprintln!("error: {e:#}"),
                }
                ExitCode::FAILURE
            }
        }
    }

    async fn dispatch(self) -> anyhow::Result<()> {
        let config = Config::load(self.config.as_deref())?;
        match self.command {
            Command::Serve => serve::run(config).await,
            Command::Demo(args) => demo::run(config, args).await,
            Command::Users(cmd) => users::run(config, cmd).await,
            Command::Vm(cmd) => vm::run(config, cmd).await,
            Command::Storage(cmd) => storage::run(config, cmd).await,
            Command::Check => check::run(config).await,
            Command::Image(cmd) => image::run(config, cmd).await,
        }
    }
}
