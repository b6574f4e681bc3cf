//! `image build`: the snapshot image VMs boot from.

use crate::app;
use crate::config::Config;
use anyhow::bail;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(super) enum ImageCommand {
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
        /// Also bake the images of `[pool] repos` into the snapshot, under
        /// the names BinderHub gives them, so that even a VM booted cold
        /// starts those repositories without a build.
        #[arg(long)]
        prebuild: bool,
    },
}

pub(super) async fn run(config: Config, cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Build {
            name,
            base_image,
            flavor,
            prebuild,
        } => build(config, name, base_image, flavor, prebuild).await,
    }
}

/// `image build`: the build with its progress on stdout, raced with Ctrl-C,
/// which cancels it (the build then deletes what it made); a second Ctrl-C
/// stops at once.
async fn build(
    config: Config,
    name: Option<String>,
    base_image: Option<String>,
    flavor: Option<String>,
    prebuild: bool,
) -> anyhow::Result<()> {
    use crate::image_build::{self, BuildEvent, Plan, Timing};
    let mut plan = Plan::from_config(&config.image, name, base_image, flavor)
        .map_err(|e| anyhow::anyhow!(e))?;
    if prebuild {
        if config.pool.repos.is_empty() {
            bail!(
                "--prebuild bakes the repositories of `[pool] repos` into the image, and there are none: \
                 add them, e.g. repos = [{{ repo = \"https://github.com/org/course\", ref = \"main\" }}]"
            );
        }
        plan = plan.prebuilding(&config.image, &config.pool.repos);
    }
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
    if prebuild {
        for pin in &config.pool.repos {
            println!("prebuilding {} at {} into the image", pin.repo, pin.git_ref);
        }
    }
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
