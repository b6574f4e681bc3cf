//! The command line: `serve`, `demo`, `users`, `vm`, `image`, `check`. Every command goes
//! through the same store and provisioner as the web pages.

use crate::app::{self, Application, Options};
use crate::config::{Backend, Config, ConfigError};
use crate::domain::{LaunchParams, Login, VmId, VmState};
use crate::provision::{DeleteReason, ProvisionError};
use crate::store::{AllowOutcome, Imported, NewLink, Store, VmRecord};
use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    Demo(DemoArgs),
    /// Manage the allowlist.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Look at and manage VMs.
    #[command(subcommand)]
    Vm(VmCommand),
    /// Build the snapshot image VMs boot from.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Check the cloud: credentials, image, flavor, key pair, security
    /// groups, network, floating IP pool and quotas (exit 1 on any FAIL).
    Check,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Where to listen (loopback only); default: server.bind.
    #[arg(long, value_name = "HOST:PORT")]
    bind: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Boot a builder VM from the base image with cloud-init/base-image.yaml,
    /// wait until it powers off, snapshot it and delete it; prints the new
    /// image's id. Ctrl-C deletes what the build made.
    Build {
        /// Name of the new image (default: stackbinder-snapshot-<date>).
        #[arg(long)]
        name: Option<String>,
        /// Stock image to start from, name or id (default: image.base_image).
        #[arg(long, value_name = "IMAGE")]
        base_image: Option<String>,
        /// Flavor of the builder, name or id (default: image.builder_flavor).
        #[arg(long)]
        flavor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Registered users and pending invitations.
    List,
    /// Allow GitHub logins (they are registered at their next login).
    Add {
        #[arg(required = true)]
        logins: Vec<String>,
    },
    /// Take a login off the allowlist and delete their VM.
    Remove { login: String },
    /// Allow every login in FILE (the old tool's allowed_users.cfg: one
    /// GitHub login per line; blank lines and # comments are skipped).
    Import { file: PathBuf },
    /// Registration links.
    #[command(subcommand)]
    Link(LinkCommand),
}

#[derive(Debug, Subcommand)]
enum LinkCommand {
    /// Make a new registration link and print it (it is shown only once).
    Create {
        /// What the link is for, e.g. a course.
        #[arg(long)]
        label: String,
        /// The link stops working after this many days.
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// The link stops working after this many registrations.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        max_uses: Option<i64>,
    },
    /// All links with their use counts and state.
    List,
    /// Stop a link from working.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
enum VmCommand {
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
        let config_path = self.config.as_deref();
        match self.command {
            Command::Serve => serve(Config::load(config_path)?).await,
            Command::Demo(args) => demo(Config::load(config_path)?, args).await,
            Command::Users(cmd) => users(Config::load(config_path)?, cmd).await,
            Command::Vm(cmd) => vm(Config::load(config_path)?, cmd).await,
            Command::Check => check(Config::load(config_path)?).await,
            Command::Image(ImageCommand::Build {
                name,
                base_image,
                flavor,
            }) => build_image(Config::load(config_path)?, name, base_image, flavor).await,
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
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

async fn demo(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
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
        "Log in with any name, open the registration link, then launch. Ctrl-C stops the demo."
    );
    let result = app.run_until_stopped(app::shutdown_signal()).await;
    drop(dir);
    result
}

/// This installation's id for `check`, from the database, which `check`
/// never creates: run by another user (root, say) it would make a file the
/// server could not write. Not a check that can fail.
async fn installation_line(database_url: &str) -> String {
    use sqlx::sqlite::SqliteConnectOptions;
    use std::str::FromStr;
    let exists =
        SqliteConnectOptions::from_str(database_url).is_ok_and(|o| o.get_filename().is_file());
    if !exists {
        return format!(
            "installation: none yet (made with the database {database_url} by the first `stackbinder serve`)"
        );
    }
    let id = match crate::store::Store::connect(database_url).await {
        Ok(store) => store.installation_id().await,
        Err(e) => Err(e),
    };
    match id {
        Ok(id) => format!(
            "installation {id}: stackbinder touches only what carries {}={id}",
            crate::cloud::META_INSTANCE
        ),
        Err(e) => format!("installation: unknown ({e})"),
    }
}

/// One line per item, OK or FAIL with its fix; fails if any item does.
async fn check(config: Config) -> anyhow::Result<()> {
    let cloud = app::cloud_from_config(&config);
    println!("checking the {} cloud", cloud.kind());
    println!("{}", installation_line(&config.database.url).await);
    let items = cloud.check().await;
    for item in &items {
        let mark = if item.ok { "OK  " } else { "FAIL" };
        println!("{mark} {}: {}", item.what, item.detail);
        if let Some(fix) = &item.fix {
            println!("     fix: {fix}");
        }
    }
    let failed = items.iter().filter(|i| !i.ok).count();
    if failed > 0 {
        bail!("{failed} of {} checks failed", items.len());
    }
    println!("all {} checks passed", items.len());
    Ok(())
}

/// `image build`: the build with its progress on stdout, raced with Ctrl-C,
/// which cancels it (the build then deletes what it made); a second Ctrl-C
/// stops at once.
async fn build_image(
    config: Config,
    name: Option<String>,
    base_image: Option<String>,
    flavor: Option<String>,
) -> anyhow::Result<()> {
    use crate::image_build::{self, BuildEvent, Plan, Timing};
    let plan = Plan::from_config(&config.image, name, base_image, flavor)
        .map_err(|e| anyhow::anyhow!(e))?;
    let cloud = app::cloud_from_config(&config);
    // The builder carries this installation's id, so the reconciler of a
    // `serve` on the same database cleans it up if this build dies.
    let owner = crate::store::Store::connect(&config.database.url)
        .await?
        .installation_id()
        .await?;
    println!(
        "building image {:?} on the {} cloud (Ctrl-C stops and deletes what it made)",
        plan.name,
        cloud.kind()
    );
    let mut show = |p: BuildEvent| match p {
        BuildEvent::Step(step) => println!("==> {step}"),
        BuildEvent::Console(line) => println!("    | {line}"),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let timing = Timing::from_config(&config);
    let build = image_build::build_image(&*cloud, &owner, &plan, &timing, &mut show, &cancel);
    tokio::pin!(build);
    let result = tokio::select! {
        result = &mut build => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: deleting what the build made (Ctrl-C again to leave it)");
            cancel.cancel();
            tokio::select! {
                result = &mut build => result,
                _ = tokio::signal::ctrl_c() => bail!(
                    "stopped without cleaning up: delete the server {:?} and any image {:?} by hand",
                    plan.builder_name(),
                    plan.name
                ),
            }
        }
    };
    let built = result?;
    println!();
    println!("image {:?} is active: {}", built.name, built.image_id);
    println!("use it in the configuration:");
    println!();
    println!("    cloud.image = \"{}\"", built.image_id);
    println!();
    println!(
        "(that is, image = \"{0}\" in the [cloud] section of config.toml, or STACKBINDER_CLOUD__IMAGE={0})",
        built.image_id
    );
    if !built.left_behind.is_empty() {
        bail!(
            "the image is fine, but these could not be deleted, delete them by hand: {}",
            built.left_behind.join("; ")
        );
    }
    Ok(())
}

async fn users(config: Config, cmd: UsersCommand) -> anyhow::Result<()> {
    let provisioner = app::provisioner(&config).await?;
    let store = provisioner.store();
    match cmd {
        UsersCommand::List => {
            let users = store.list_users().await?;
            let invites = store.list_invites().await?;
            println!(
                "{:<40} {:>12}  {:<26} registered via",
                "LOGIN", "GITHUB ID", "REGISTERED"
            );
            for u in users.iter().filter(|u| u.is_registered()) {
                println!(
                    "{:<40} {:>12}  {:<26} {}",
                    u.login,
                    u.github_id,
                    u.registered_at
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default(),
                    u.registered_via.as_deref().unwrap_or("")
                );
            }
            for i in &invites {
                println!(
                    "{:<40} {:>12}  {:<26} invited by {} (not logged in yet)",
                    i.login,
                    "-",
                    i.invited_at.format("%Y-%m-%d %H:%M UTC"),
                    i.invited_by
                );
            }
            let unregistered = users.iter().filter(|u| !u.is_registered()).count();
            println!(
                "\n{} registered, {} invited, {} logged in without registering",
                users.len() - unregistered,
                invites.len(),
                unregistered
            );
        }
        UsersCommand::Add { logins } => {
            for raw in logins {
                let login = Login::parse(&raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))?;
                match store.allow_login(&login, "cli").await? {
                    AllowOutcome::Registered => println!("{login}: registered"),
                    AllowOutcome::AlreadyRegistered => println!("{login}: already registered"),
                    AllowOutcome::Invited => {
                        println!("{login}: invited; registered at their first login")
                    }
                }
            }
        }
        UsersCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let (mut added, mut withdrawn, mut bad) = (0, 0, 0);
            for (number, line) in text.lines().enumerate() {
                let entry = line.split('#').next().unwrap_or("").trim();
                if entry.is_empty() {
                    continue;
                }
                match Login::parse(entry) {
                    Ok(login) => match store.import_login(&login, "import").await? {
                        Imported::LeftOutRevoked => {
                            println!(
                                "{login}: left out, their access was revoked \
                                     (`stackbinder users add {login}` allows them again)"
                            );
                            withdrawn += 1;
                        }
                        Imported::Allowed(_) => added += 1,
                    },
                    Err(e) => {
                        eprintln!("{}:{}: {entry:?} skipped: {e}", file.display(), number + 1);
                        bad += 1;
                    }
                }
            }
            println!(
                "{added} login(s) allowed, {withdrawn} revoked login(s) left out, \
                 {bad} line(s) skipped"
            );
            if bad > 0 {
                bail!("some lines of {} are not GitHub logins", file.display());
            }
        }
        UsersCommand::Link(cmd) => links(&config, store, cmd).await?,
        UsersCommand::Remove { login } => {
            let login = Login::parse(&login).map_err(|e| anyhow::anyhow!("{login:?}: {e}"))?;
            let (user, uninvited) = store.revoke_login(&login, "cli").await?;
            match user {
                Some(user) => {
                    println!("{login}: removed from the allowlist");
                    if let Some(vm) = store.live_vm_of(user.github_id).await? {
                        provisioner
                            .delete(
                                &vm,
                                DeleteReason::Revoked,
                                "its owner was removed from the allowlist",
                            )
                            .await?;
                        println!("{login}: their VM {} is being deleted", vm.id);
                    }
                }
                None if uninvited => println!("{login}: invitation withdrawn"),
                None => bail!("{login} is neither a user nor invited"),
            }
        }
    }
    Ok(())
}

async fn links(config: &Config, store: &Store, cmd: LinkCommand) -> anyhow::Result<()> {
    match cmd {
        LinkCommand::Create {
            label,
            expires_in_days,
            max_uses,
        } => {
            let label = label.trim();
            if label.is_empty() || label.len() > 100 {
                bail!("--label must be 1 to 100 characters");
            }
            let secret = crate::secret::generate();
            let link = store
                .create_link(NewLink {
                    label,
                    secret_hash: &crate::secret::hash(&secret),
                    created_by: "cli",
                    expires_at: expires_in_days
                        .map(|d| Utc::now() + chrono::Duration::days(i64::from(d))),
                    max_uses,
                })
                .await?;
            let url = config
                .server
                .public_url
                .join(&format!("register/{secret}"))?;
            println!("link {} ({}) created:", link.id, link.label);
            println!("  {url}");
            println!("Keep it: only its hash is stored, it cannot be shown again.");
        }
        LinkCommand::List => {
            let now = Utc::now();
            println!(
                "{:>4}  {:<30} {:<9} {:>9}  {:<17} CREATED",
                "ID", "LABEL", "STATE", "USES", "EXPIRES"
            );
            for link in store.list_links().await? {
                let uses = match link.max_uses {
                    Some(max) => format!("{}/{max}", link.uses),
                    None => link.uses.to_string(),
                };
                println!(
                    "{:>4}  {:<30} {:<9} {:>9}  {:<17} {}",
                    link.id,
                    link.label,
                    format!("{:?}", link.state(now)).to_lowercase(),
                    uses,
                    link.expires_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                    link.created_at.format("%Y-%m-%d %H:%M")
                );
            }
            if config.registration.secret.is_some() || config.registration.secret_file.is_some() {
                println!("(and the link of registration.secret in the configuration)");
            }
        }
        LinkCommand::Revoke { id } => {
            if store.revoke_link(id).await? {
                println!("link {id} revoked");
            } else if store.link(id).await?.is_some() {
                println!("link {id} was already revoked");
            } else {
                bail!("there is no link {id}");
            }
        }
    }
    Ok(())
}

async fn vm(config: Config, cmd: VmCommand) -> anyhow::Result<()> {
    let provisioner = app::provisioner(&config).await?;
    let store = provisioner.store();
    match cmd {
        VmCommand::List { all } => {
            let vms = store.list_vms(all).await?;
            println!(
                "{:<36}  {:<20} {:<10} {:<9} {:<17} REPOSITORY",
                "ID", "OWNER", "STATE", "PROGRESS", "CREATED"
            );
            for vm in &vms {
                println!(
                    "{:<36}  {:<20} {:<10} {:<9} {:<17} {}",
                    vm.id,
                    vm.owner_login,
                    vm.state,
                    vm.progress
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    vm.created_at.format("%Y-%m-%d %H:%M"),
                    vm.repo
                );
            }
            println!("\n{} VM(s)", vms.len());
        }
        VmCommand::Show { who } => {
            let vm = find_vm(store, &who).await?;
            print_vm(store, &vm).await?;
        }
        VmCommand::Start {
            user,
            repo,
            git_ref,
            path,
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
            let vm = find_vm(store, &who).await?;
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
async fn find_vm(store: &Store, who: &str) -> anyhow::Result<VmRecord> {
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
    if let Some(vm) = store.live_vm_of(user.github_id).await? {
        return Ok(vm);
    }
    store
        .list_vms_of(user.github_id)
        .await?
        .into_iter()
        .next()
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
