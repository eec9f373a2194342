//! The rustls configurations of the node's listeners and of its clients, with the certificate
//! verifiers behind them: node certificates between nodes, a pinned certificate for platforms.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::{check_node_certificate, read_certificates, PeerCertificate, TlsError, PEER_REFUSED};
use crate::province::Province;

/// The crypto provider every TLS configuration uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(super) fn unix(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// The node's current certified key, replaced after a key rotation; serves both as the server
/// certificate and as the client certificate of calls to peers.
#[derive(Debug)]
pub struct CertSource(pub ArcSwap<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for CertSource {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl rustls::client::ResolvesClientCert for CertSource {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The handshake-signature methods every verifier here shares: rustls's own checks with the
/// verifier's crypto provider (the certificate checks differ; these do not).
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// Server side: asks every client for a certificate but does not require one (platforms and
/// checkpoint devices authenticate with tokens). A certificate that is presented must be a
/// valid node certificate ([`check_node_certificate`]); which province it may act for is
/// decided per call, against the agreements and trust feeds.
#[derive(Debug)]
struct NodeClientVerifier {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_node_certificate(end_entity, unix(now))
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_checks!();
}

/// The server configuration of a node's listeners: TLS 1.3 only, the node certificate, client
/// certificates requested (node certificates only), ALPN `alpn`.
///
/// # Errors
/// [`TlsError::Config`].
pub fn server_config(
    cert: Arc<CertSource>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(NodeClientVerifier { provider }))
        .with_cert_resolver(cert);
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Client side of a call to a peer node: the server must present a node certificate for
/// `province` certified by a key `accept` approves.
struct PeerServerVerifier {
    provider: Arc<CryptoProvider>,
    province: Option<Province>,
    accept: Box<dyn Fn(&PeerCertificate) -> bool + Send + Sync>,
}

impl std::fmt::Debug for PeerServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerServerVerifier({:?})", self.province)
    }
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let peer = check_node_certificate(end_entity, unix(now))
            .map_err(|e| rustls::Error::General(format!("{PEER_REFUSED}: {e}")))?;
        if let Some(p) = self.province {
            if peer.province != p {
                return Err(rustls::Error::General(format!(
                    "{PEER_REFUSED}: it speaks for province {}, not {p}",
                    peer.province
                )));
            }
        }
        if !(self.accept)(&peer) {
            let kids: Vec<String> = peer.keys.iter().map(|k| k.kid.to_string()).collect();
            return Err(rustls::Error::General(format!(
                "{PEER_REFUSED}: {} certified by key(s) {}, none of which this node trusts for it (agreement, trust feed or expected kid)",
                peer.province,
                kids.join(", ")
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_checks!();
}

/// The client configuration of a call from this node to a peer: presents this node's
/// certificate, and accepts the server only if its node certificate names `province` (when
/// given) and `accept` approves the keys that certified it.
///
/// # Errors
/// [`TlsError::Config`].
pub fn peer_client_config(
    own: Arc<CertSource>,
    province: Option<Province>,
    accept: impl Fn(&PeerCertificate) -> bool + Send + Sync + 'static,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerServerVerifier {
            provider,
            province,
            accept: Box::new(accept),
        }))
        .with_client_cert_resolver(own);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Client side for platforms, the CLI and checkpoint devices: accepts a server whose
/// certificate's key equals that of a certificate in the pinned file, or that chains to one of
/// them as a root with the right name (standard WebPKI checks).
#[derive(Debug)]
struct PinnedServerVerifier {
    provider: Arc<CryptoProvider>,
    spkis: Vec<Vec<u8>>,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
}

pub(super) fn spki_of(der: &[u8]) -> Option<Vec<u8>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec())
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(spki) = spki_of(end_entity) {
            if self.spkis.contains(&spki) {
                return Ok(ServerCertVerified::assertion());
            }
        }
        match &self.webpki {
            Some(w) => {
                w.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::General(
                "the node's certificate is not the pinned one".to_string(),
            )),
        }
    }

    handshake_signature_checks!();
}

/// The client configuration of a platform or the CLI: trusts the certificates of the PEM file
/// `pinned` (the node's `tls/node.crt`, or a CA's certificate). ALPN h2.
///
/// # Errors
/// [`TlsError::File`] or [`TlsError::Config`].
pub fn pinned_client_config(pinned: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let certs = read_certificates(pinned)?;
    let provider = provider();
    let spkis = certs.iter().filter_map(|c| spki_of(c)).collect();
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        let _ = roots.add(CertificateDer::from(c.clone()));
    }
    let webpki = if roots.is_empty() {
        None
    } else {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .ok()
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServerVerifier {
            provider,
            spkis,
            webpki,
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
