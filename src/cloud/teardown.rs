//! Removing a server and its volumes in one go, with the semantics of a VM
//! deletion (`provision::driver::remove`): ask Nova to delete the server,
//! wait until it is gone (Cinder refuses to delete a volume that is still
//! attached), then delete each of its own volumes, trying again while Cinder says it
//! is busy. The driver does this one step per tick with its state in the
//! store; a command that owns its server (`image build`) waits inline.

use super::{Cloud, CloudError, ServerStatus};
use std::time::Duration;
use tokio::time::Instant;

/// How often to look and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub poll: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeardownError {
    #[error("{0}")]
    Cloud(#[from] CloudError),
    #[error("server {id} was still there {seconds} s after it was asked to go ({status:?})")]
    ServerStays {
        id: String,
        seconds: u64,
        status: ServerStatus,
    },
    #[error("volume {id} was still in use {seconds} s after its server was gone")]
    VolumeStays { id: String, seconds: u64 },
}

/// Delete `server_id` and wait until it is gone, then delete `volumes`:
/// only those the caller recorded as its own, never whatever is attached
/// (an operator may attach a volume to any server). A server or volume
/// that is already gone is not an error. Transient cloud errors are
/// retried until the deadline.
pub async fn delete_server_and_volumes(
    cloud: &dyn Cloud,
    server_id: &str,
    volumes: &[String],
    patience: Patience,
) -> Result<(), TeardownError> {
    let deadline = Instant::now() + patience.timeout;
    let seconds = patience.timeout.as_secs();
    let mut asked = false;
    loop {
        let attempt = async {
            let server = cloud.get_server(server_id).await?;
            if let Some(server) = &server
                && (!asked || server.status != ServerStatus::Deleting)
            {
                cloud.delete_server(server_id).await?;
                asked = true;
            }
            Ok::<_, CloudError>(server)
        };
        match attempt.await {
            Ok(None) => break,
            Ok(Some(server)) if Instant::now() >= deadline => {
                return Err(TeardownError::ServerStays {
                    id: server_id.to_owned(),
                    seconds,
                    status: server.status,
                });
            }
            Err(e) if !e.is_transient() || Instant::now() >= deadline => return Err(e.into()),
            Ok(Some(_)) | Err(_) => tokio::time::sleep(patience.poll).await,
        }
    }
    for volume in volumes {
        loop {
            match cloud.delete_volume(volume).await {
                Ok(()) => break,
                Err(CloudError::VolumeBusy) if Instant::now() >= deadline => {
                    return Err(TeardownError::VolumeStays {
                        id: volume.clone(),
                        seconds,
                    });
                }
                Err(e) if !e.is_transient() || Instant::now() >= deadline => {
                    return Err(e.into());
                }
                Err(_) => tokio::time::sleep(patience.poll).await,
            }
        }
    }
    Ok(())
}
