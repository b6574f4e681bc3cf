//! How many OpenStack API calls a launch and a delete take, by service, and
//! how much time stackbinder adds on top of the calls themselves, against
//! the fake OpenStack with an artificial latency on every call.
//!
//!     cargo bench --bench openstack
//!
//! A launch is what the driver asks of the cloud: find_server (is there one
//! from an interrupted attempt?), create_server (quota check + create),
//! get_server until ACTIVE, attach_floating_ip. A delete: get_server,
//! delete_server, get_server until gone, delete_volume,
//! release_floating_ip. "Bare sum" is calls × latency, as if each call
//! were made back to back with nothing in between; "added" is the wall
//! time minus that (negative when calls overlap: Nova's and Cinder's limits
//! are read in parallel).

#[path = "../tests/openstack/fake_openstack/mod.rs"]
#[allow(dead_code)]
mod fake_openstack;

use fake_openstack::{FakeOpenStack, IMAGE, KEY, POOL};
use stackbinder::cloud::openstack::{Credentials, OpenStackCloud, Tuning};
use stackbinder::cloud::{Cloud, InstallationId, META_INSTANCE, META_VM, ServerSpec, ServerStatus};
use stackbinder::config::{Backend, CloudConfig};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(20);
const ROUNDS: usize = 5;

struct Measured {
    wall: Duration,
    calls: BTreeMap<&'static str, usize>,
}

impl Measured {
    fn total(&self) -> usize {
        self.calls.values().sum()
    }

    fn bare(&self) -> Duration {
        LATENCY * self.total() as u32
    }

    fn line(&self, what: &str) -> String {
        let by_service: Vec<String> = self.calls.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let added = self.wall.as_secs_f64() - self.bare().as_secs_f64();
        format!(
            "| {what} | {} | {} | {:.0} ms | {:.0} ms | {:+.1} ms |",
            self.total(),
            by_service.join(", "),
            self.bare().as_secs_f64() * 1000.0,
            self.wall.as_secs_f64() * 1000.0,
            added * 1000.0
        )
    }
}

/// The installation the benchmark's servers belong to.
fn owner() -> InstallationId {
    InstallationId::from_stored("0b0e0c0a0d0f00000000000000000001".into())
}

fn spec(login: &str) -> ServerSpec {
    ServerSpec {
        name: login.into(),
        image: IMAGE.into(),
        flavor: "m1.large".into(),
        volume_size_gb: 150,
        delete_volume_on_termination: true,
        key_name: Some(KEY.into()),
        security_groups: vec!["ssh-whitelist".into(), "Open-top".into()],
        network: None,
        user_data: "#cloud-config\n{}\n".into(),
        metadata: BTreeMap::from([
            (META_VM.to_owned(), uuid::Uuid::new_v4().to_string()),
            (META_INSTANCE.to_owned(), owner().to_string()),
        ]),
        home_volume: None,
        availability_zone: None,
    }
}

async fn launch(
    cloud: &OpenStackCloud,
    fake: &FakeOpenStack,
    login: &str,
) -> (Measured, String, String) {
    let from = fake.calls().len();
    let start = Instant::now();
    let s = spec(login);
    assert!(
        cloud
            .find_server(&owner(), &s.metadata[META_VM])
            .await
            .unwrap()
            .is_none()
    );
    let id = cloud.create_server(&s).await.unwrap();
    let server = loop {
        let server = cloud.get_server(&id).await.unwrap().unwrap();
        if server.status == ServerStatus::Active {
            break server;
        }
    };
    cloud
        .tag_volume(&server.volume_ids[0], &owner(), &s.metadata[META_VM])
        .await
        .unwrap();
    let fip = cloud.attach_floating_ip(&id, &owner()).await.unwrap();
    let wall = start.elapsed();
    (
        Measured {
            wall,
            calls: fake.count_by_service(from),
        },
        id,
        fip.id,
    )
}

async fn delete(cloud: &OpenStackCloud, fake: &FakeOpenStack, id: &str, fip: &str) -> Measured {
    let from = fake.calls().len();
    let start = Instant::now();
    let server = cloud.get_server(id).await.unwrap().unwrap();
    cloud.delete_server(id).await.unwrap();
    while cloud.get_server(id).await.unwrap().is_some() {}
    for v in &server.volume_ids {
        cloud.delete_volume(v).await.unwrap();
    }
    cloud.release_floating_ip(fip).await.unwrap();
    Measured {
        wall: start.elapsed(),
        calls: fake.count_by_service(from),
    }
}

fn median(mut v: Vec<Measured>) -> Measured {
    v.sort_by_key(|m| m.wall);
    v.swap_remove(v.len() / 2)
}

#[tokio::main]
async fn main() {
    let fake = FakeOpenStack::start().await;
    {
        let mut w = fake.world();
        w.latency = LATENCY;
        w.boot_polls = 0;
    }
    let dir = tempfile::tempdir().unwrap();
    let clouds_yaml = dir.path().join("clouds.yaml");
    std::fs::write(&clouds_yaml, fake.clouds_yaml_password()).unwrap();
    let config = CloudConfig {
        backend: Backend::Openstack,
        cloud: "fake".into(),
        image: IMAGE.into(),
        key_name: Some(KEY.into()),
        floating_ip_pool: Some(POOL.into()),
        // A launch with its floating IP, as the figures in README.md are.
        jupyter_access: stackbinder::config::JupyterAccess::FloatingIp,
        ..CloudConfig::default()
    };
    let cloud = OpenStackCloud::new(
        &config,
        Credentials::File {
            path: clouds_yaml,
            cloud: "fake".into(),
        },
        Tuning::default(),
    );

    let (cold, id, fip) = launch(&cloud, &fake, "cold").await;
    let cold_delete = delete(&cloud, &fake, &id, &fip).await;
    let mut launches = Vec::new();
    let mut deletes = Vec::new();
    for i in 0..ROUNDS {
        let (m, id, fip) = launch(&cloud, &fake, &format!("warm{i}")).await;
        launches.push(m);
        deletes.push(delete(&cloud, &fake, &id, &fip).await);
    }
    assert_eq!(
        fake.server_count() + fake.volume_count() + fake.fips().len(),
        0,
        "nothing leaked"
    );

    println!(
        "OpenStack backend against the fake, {} ms per API call, median of {ROUNDS} warm rounds",
        LATENCY.as_millis()
    );
    println!();
    println!("| operation | calls | by service | bare sum | wall | added |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        cold.line("first launch (auth, discovery, name lookups)")
    );
    println!("{}", median(launches).line("launch"));
    println!("{}", cold_delete.line("first delete"));
    println!("{}", median(deletes).line("delete"));
}
