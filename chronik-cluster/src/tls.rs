//! Loading the PEM files of mutual TLS between nodes.

use raft_transport::grpc::TlsConfig;

use crate::config::TlsSettings;
use crate::error::{ClusterError, Result};

/// Reads the CA, certificate and key named in the configuration.
///
/// # Errors
/// `Io` naming the file that cannot be read.
pub(crate) fn load(settings: &TlsSettings) -> Result<TlsConfig> {
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|source| ClusterError::Io {
            path: path.clone(),
            source,
        })
    };
    Ok(TlsConfig {
        ca_pem: read(&settings.ca)?,
        cert_pem: read(&settings.cert)?,
        key_pem: read(&settings.key)?,
        server_name: settings.server_name.clone(),
    })
}
