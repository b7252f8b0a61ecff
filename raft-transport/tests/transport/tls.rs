//! Mutual TLS: nodes with certificates from the cluster CA talk; a node
//! with a certificate from another CA, or with none, is refused.

use std::sync::Arc;

use raft_transport::grpc::{GrpcConfig, GrpcTransport, TlsConfig};
use raft_transport::Transport;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

use crate::grpc::test_config;
use crate::suite::WAIT;
use crate::support::{numbered, send_reliably, wait_until, Recorder};

fn certificate_authority() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A node certificate for "localhost" signed by `signer`, trusting `trusted`.
fn node_tls(
    signer: &CertifiedIssuer<'static, KeyPair>,
    trusted: &CertifiedIssuer<'static, KeyPair>,
) -> TlsConfig {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let certificate = params.signed_by(&key, signer).unwrap();
    TlsConfig {
        ca_pem: trusted.pem().into_bytes(),
        cert_pem: certificate.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
        server_name: "localhost".to_string(),
    }
}

async fn start(
    config: GrpcConfig,
    listener: tokio::net::TcpListener,
    peers: &[(u64, String)],
) -> (Arc<GrpcTransport>, Arc<Recorder>) {
    let transport = GrpcTransport::new(config).unwrap();
    let recorder = Recorder::new();
    transport.set_handler(recorder.clone());
    for (id, addr) in peers {
        transport.add_peer(*id, addr.clone()).unwrap();
    }
    transport.serve(listener).unwrap();
    (transport, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_admits_cluster_nodes_and_refuses_others() {
    let cluster_ca = certificate_authority();
    let rogue_ca = certificate_authority();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let mut listeners = listeners.into_iter();
    // Node 1 knows 2, 3 and 4 as peers: only TLS stands between them.
    let everyone: Vec<(u64, String)> = vec![
        (2, addrs[1].clone()),
        (3, addrs[2].clone()),
        (4, addrs[3].clone()),
    ];
    let (one, inbox_one) = start(
        test_config(1).tls(node_tls(&cluster_ca, &cluster_ca)),
        listeners.next().unwrap(),
        &everyone,
    )
    .await;
    let to_one = vec![(1, addrs[0].clone())];
    let (two, inbox_two) = start(
        test_config(2).tls(node_tls(&cluster_ca, &cluster_ca)),
        listeners.next().unwrap(),
        &to_one,
    )
    .await;
    // Node 3 trusts the cluster CA but its own certificate is from another CA.
    let (three, _) = start(
        test_config(3).tls(node_tls(&rogue_ca, &cluster_ca)),
        listeners.next().unwrap(),
        &to_one,
    )
    .await;
    // Node 4 speaks plain text.
    let (four, _) = start(test_config(4), listeners.next().unwrap(), &to_one).await;

    send_reliably(one.as_ref(), 2, vec![numbered(1, 1, 32)], WAIT).await;
    send_reliably(two.as_ref(), 1, vec![numbered(1, 2, 32)], WAIT).await;
    wait_until("traffic over TLS", WAIT, || {
        inbox_two.message_count() == 1 && inbox_one.message_count() == 1
    })
    .await;
    assert!(one.is_connected(2) && two.is_connected(1));

    wait_until("refused connection attempts", WAIT, || {
        three.stats().peer(1).connect_failures >= 3 && four.stats().peer(1).connect_failures >= 3
    })
    .await;
    assert!(!three.is_connected(1) && !four.is_connected(1));
    assert!(
        !one.is_connected(3),
        "node 1 refuses node 3's server certificate too"
    );
    assert_eq!(three.stats().peer(1).connects, 0);
    assert_eq!(four.stats().peer(1).connects, 0);
    assert!(inbox_one.messages_from(3).is_empty() && inbox_one.messages_from(4).is_empty());
    for node in [one, two, three, four] {
        node.shutdown().await;
    }
}
