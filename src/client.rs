//! Connecting to a node: `https://` with a pinned certificate (or `http://` on loopback for
//! development), and the caller's API token on every call.
//!
//! Used by the CLI, the demo, the tests, and a node's calls to its peers (which present their
//! node certificate instead of a token: see [`crate::tls::peer_client_config`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

/// Errors of connecting.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A URL that is not `http://host:port` or `https://host:port`.
    #[error("{url:?}: expected a URL such as https://127.0.0.1:7510")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// An `https://` URL without a certificate to pin.
    #[error(
        "{url}: an https URL needs the node's certificate (--tls-cert, HCMR_TLS_CERT); on the \
         node's machine, --dir FOLDER (HCMR_DIR) takes its URL and certificate from the node's \
         folder"
    )]
    NoCertificate {
        /// The URL given.
        url: String,
    },
    /// A token that cannot travel in a header.
    #[error("the API token has characters a header cannot carry")]
    BadToken,
    /// The node could not be reached or the TLS handshake failed.
    #[error("cannot reach node {url}: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The TLS handshake reached a node, but its certificate is not one this client trusts (not
    /// the pinned one, or a peer node that is not the expected one): another node, or the wrong
    /// certificate given. Not an outage.
    #[error("the node at {url} presented a certificate that is not the one expected: {detail}")]
    WrongCertificate {
        /// The URL.
        url: String,
        /// What the verifier said.
        detail: String,
    },
    /// A certificate file problem.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct AddToken(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for AddToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AddToken(<token>)"
        } else {
            "AddToken(none)"
        })
    }
}

impl AddToken {
    /// For `token` (`hcmr_...`), or no header when `None`.
    ///
    /// # Errors
    /// [`ClientError::BadToken`].
    pub fn new(token: Option<&str>) -> Result<AddToken, ClientError> {
        match token {
            None => Ok(AddToken(None)),
            Some(t) => {
                let mut v: MetadataValue<Ascii> = format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| ClientError::BadToken)?;
                v.set_sensitive(true);
                Ok(AddToken(Some(v)))
            }
        }
    }
}

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The URL of a node listening on `addr`: `https://` + `addr` with TLS, `http://` + `addr`
/// without (loopback development only). A node's config may name another (`endpoint`).
pub fn node_url(tls: bool, addr: std::net::SocketAddr) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// A channel to a node that carries the caller's token.
pub type NodeChannel = InterceptedService<Channel, AddToken>;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Opens a gRPC channel to `url`: TCP with TCP_NODELAY, then TLS with `tls` for `https://`.
/// `timeout` bounds each call, and the TCP connect and the TLS handshake each (at most 10 s).
///
/// # Errors
/// [`ClientError::BadUrl`], [`ClientError::NoCertificate`], [`ClientError::WrongCertificate`] or
/// [`ClientError::Unreachable`].
pub async fn channel(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Channel, ClientError> {
    let https = url.starts_with("https://");
    if !(https || url.starts_with("http://")) {
        return Err(ClientError::BadUrl {
            url: url.to_string(),
        });
    }
    if https && tls.is_none() {
        return Err(ClientError::NoCertificate {
            url: url.to_string(),
        });
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|_| ClientError::BadUrl {
            url: url.to_string(),
        })?
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout);
    let step = timeout.min(Duration::from_secs(10));
    let connector = tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        async move {
            let host = uri
                .host()
                .ok_or_else(|| std::io::Error::other("URL without a host"))?
                .trim_matches(['[', ']'])
                .to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tcp =
                tokio::time::timeout(step, tokio::net::TcpStream::connect((host.as_str(), port)))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                    })??;
            tcp.set_nodelay(true)?;
            let io: Box<dyn Io> = match (https, tls) {
                (true, Some(config)) => {
                    let name = rustls::pki_types::ServerName::try_from(host)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    let tls = tokio::time::timeout(
                        step,
                        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
                    )
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
                    Box::new(crate::tls::stream::Coalesced::new(tls))
                }
                _ => Box::new(tcp),
            };
            Ok::<_, std::io::Error>(TokioIo::new(io))
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| {
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // A wrapper often repeats its cause's text: said once.
                let text = s.to_string();
                if !detail.ends_with(&text) {
                    detail.push_str(&format!(": {text}"));
                }
                source = s.source();
            }
            // What rustls says when the other side answered in plain text.
            if https && detail.contains("InvalidContentType") {
                detail.push_str(
                    " (the node does not speak TLS on this port: a node made with --plaintext \
                     is called at its http:// URL)",
                );
            }
            match certificate_refusal(&e) {
                Some(why) => ClientError::WrongCertificate {
                    url: url.to_string(),
                    detail: why,
                },
                None => ClientError::Unreachable {
                    url: url.to_string(),
                    detail,
                },
            }
        })
}

/// What this client's certificate verifier said, when a connection failed because it refused
/// the server's certificate (rather than because the node was down). tokio-rustls carries the
/// [`rustls::Error`] inside an [`std::io::Error`], whose `source()` skips it: each I/O error's
/// payload is looked at too.
fn certificate_refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        match tls {
            Some(t @ rustls::Error::InvalidCertificate(_)) => return Some(t.to_string()),
            // Our verifiers' own refusals (tls.rs) are General errors raised while verifying.
            Some(rustls::Error::General(m)) => return Some(m.clone()),
            _ => {}
        }
        next = err.source();
    }
    None
}

/// Opens a channel to `url` as a caller: pins the certificate file `cert` for `https://`, and
/// sends `token`. Calls time out after 30 seconds.
///
/// # Errors
/// [`ClientError`].
pub async fn connect(
    url: &str,
    cert: Option<&Path>,
    token: Option<&str>,
) -> Result<NodeChannel, ClientError> {
    let tls = match cert {
        Some(p) => Some(crate::tls::pinned_client_config(p)?),
        None => None,
    };
    let ch = channel(url, tls, Duration::from_secs(30)).await?;
    Ok(InterceptedService::new(ch, AddToken::new(token)?))
}
