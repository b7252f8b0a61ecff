//! Mutual TLS settings for tonic from PEM material.

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use super::config::TlsConfig;

/// The server side: present our certificate, require a client certificate
/// signed by the cluster CA.
pub(crate) fn server_config(tls: &TlsConfig) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
        .client_ca_root(Certificate::from_pem(&tls.ca_pem))
}

/// The client side: trust only the cluster CA, present our certificate.
pub(crate) fn client_config(tls: &TlsConfig) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
        .domain_name(tls.server_name.clone())
}
