//! `vm`: look at, start and delete VMs, through the provisioner.

use super::table::{Column, Table};
use crate::app;
use crate::config::Config;
use crate::domain::{LaunchParams, Login, VmId, VmState};
use crate::provision::{DeleteReason, ProvisionError, Provisioner};
use crate::store::{Store, VmRecord};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(super) enum VmCommand {
    /// VMs that are not deleted (with --all: every VM ever).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One VM with its recent events, by owner login or VM id.
    Show { who: String },
    /// Launch a VM for a registered user; the running server boots it.
    Start {
        #[arg(long)]
        user: String,
        /// https git URL (default: launch.default_repo).
        #[arg(long)]
        repo: Option<String>,
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// Path to open in Jupyter.
        #[arg(long)]
        path: Option<String>,
        /// Interface to open instead of a path: lab, notebook, rstudio,
        /// vscode or desktop.
        #[arg(long)]
        ide: Option<String>,
        /// Launch profile (`[[profiles]]`; default: the first). The
        /// operator may give any configured profile.
        #[arg(long)]
        profile: Option<String>,
        /// Wait until the VM is ready or has failed.
        #[arg(long)]
        wait: bool,
    },
    /// Delete a VM with its volume and address, by owner login or VM id.
    Delete {
        who: String,
        /// Wait until everything is gone.
        #[arg(long)]
        wait: bool,
    },
}

const VMS: Table = Table(&[
    Column::left("ID", 36, "  "),
    Column::left("OWNER", 20, " "),
    Column::left("STATE", 10, " "),
    Column::left("PROGRESS", 9, " "),
    Column::left("CREATED", 17, " "),
    Column::last("REPOSITORY"),
]);

pub(super) async fn run(config: Config, cmd: VmCommand) -> anyhow::Result<()> {
    let provisioner = app::provisioner(&config).await?;
    let store = provisioner.store();
    match cmd {
        VmCommand::List { all } => {
            let vms = store.list_vms(all).await?;
            println!("{}", VMS.header());
            for vm in &vms {
                let progress = vm
                    .progress
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into());
                let created = vm.created_at.format("%Y-%m-%d %H:%M");
                println!(
                    "{}",
                    VMS.row(&[
                        &vm.id,
                        &vm.owner_login,
                        &vm.state,
                        &progress,
                        &created,
                        &vm.repo
                    ])
                );
            }
            println!("\n{} VM(s)", vms.len());
        }
        VmCommand::Show { who } => {
            let vm = find_vm(&provisioner, &who).await?;
            print_vm(store, &vm).await?;
        }
        VmCommand::Start {
            user,
            repo,
            git_ref,
            path,
            ide,
            profile,
            wait,
        } => {
            let login = Login::parse(&user).map_err(|e| anyhow::anyhow!("{user:?}: {e}"))?;
            let Some(user) = store
                .user_by_login(&login)
                .await?
                .filter(|u| u.is_registered())
            else {
                bail!("{login} is not a registered user (they must log in once after `users add`)");
            };
            let params = LaunchParams {
                giturl: repo,
                git_ref,
                urlpath: path,
                ide,
                profile,
                ..LaunchParams::default()
            };
            let request = params
                .validate(&config.launch.default_repo)
                .map_err(|e| anyhow::anyhow!(e))?;
            let vm = match provisioner.launch(&user, &request).await {
                Ok(vm) => {
                    println!(
                        "launch {} recorded: {} at {} for {}",
                        vm.id, vm.repo, vm.git_ref, vm.owner_login
                    );
                    println!(
                        "the running stackbinder server boots it; follow with `stackbinder vm show {login}`"
                    );
                    vm
                }
                Err(ProvisionError::AlreadyHasVm(vm)) => {
                    bail!(
                        "{login} already has VM {} ({}); delete it first",
                        vm.id,
                        vm.state
                    )
                }
                Err(e) => return Err(e.into()),
            };
            if wait {
                let end = wait_for(
                    store,
                    vm.id,
                    &[VmState::Ready, VmState::Failed, VmState::Deleted],
                )
                .await?;
                print_vm(store, &end).await?;
                if end.state != VmState::Ready {
                    bail!("the VM did not become ready");
                }
            }
        }
        VmCommand::Delete { who, wait } => {
            let vm = find_vm(&provisioner, &who).await?;
            if provisioner
                .delete(
                    &vm,
                    DeleteReason::CommandLine,
                    "deleted with the command line",
                )
                .await?
            {
                println!("VM {} of {} is being deleted", vm.id, vm.owner_login);
            } else {
                println!("VM {} is already {}", vm.id, vm.state);
            }
            if wait {
                wait_for(store, vm.id, &[VmState::Deleted]).await?;
                println!(
                    "VM {} deleted: server, volumes and floating IP are gone",
                    vm.id
                );
            }
        }
    }
    Ok(())
}

/// A VM by id, or the live (else latest) VM of a login.
async fn find_vm(provisioner: &Provisioner, who: &str) -> anyhow::Result<VmRecord> {
    let store = provisioner.store();
    if let Ok(id) = who.parse::<VmId>() {
        return store
            .vm(id)
            .await?
            .with_context(|| format!("no VM with id {id}"));
    }
    let login = Login::parse(who)
        .map_err(|e| anyhow::anyhow!("{who:?} is neither a VM id nor a login: {e}"))?;
    let user = store
        .user_by_login(&login)
        .await?
        .with_context(|| format!("no user {login}"))?;
    provisioner
        .current_vm(user.github_id)
        .await?
        .with_context(|| format!("{login} has no VM"))
}

async fn print_vm(store: &Store, vm: &VmRecord) -> anyhow::Result<()> {
    println!("VM {}", vm.id);
    println!(
        "  owner       {} (GitHub id {})",
        vm.owner_login, vm.owner_id
    );
    println!(
        "  server      {} {}",
        vm.name,
        vm.server_id.as_deref().unwrap_or("(not created)")
    );
    println!("  repository  {} at {}", vm.repo, vm.git_ref);
    println!("  opens       /{}", vm.url_path);
    if let Some(profile) = &vm.profile {
        println!("  profile     {profile}");
    }
    if let (Some(ide), Some(_)) = (vm.ide, vm.ide_missing_at) {
        println!("  interface   {} is not in its environment", ide.label());
    }
    println!(
        "  state       {}{}",
        vm.state,
        vm.progress.map(|p| format!(" / {p}")).unwrap_or_default()
    );
    if let Some(address) = vm.public_address() {
        println!("  address     {address}");
    }
    if vm.state == VmState::Ready {
        println!("  jupyter     ready (the link with its token is on the owner's status page)");
    }
    if let Some(error) = &vm.last_error {
        println!("  last error  {error}");
    }
    println!(
        "  created     {}",
        vm.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("  events:");
    for e in store.recent_events(vm.id, 15).await? {
        println!(
            "    {} {:<7} {}",
            e.at.format("%H:%M:%S"),
            format!("{:?}", e.kind).to_lowercase(),
            e.message
        );
    }
    Ok(())
}

async fn wait_for(store: &Store, id: VmId, states: &[VmState]) -> anyhow::Result<VmRecord> {
    let mut last = None;
    loop {
        let vm = store
            .vm(id)
            .await?
            .context("the VM disappeared from the store")?;
        if last != Some((vm.state, vm.progress)) {
            println!(
                "  … {}{}",
                vm.state,
                vm.progress.map(|p| format!(" / {p}")).unwrap_or_default()
            );
            last = Some((vm.state, vm.progress));
        }
        if states.contains(&vm.state) {
            return Ok(vm);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
