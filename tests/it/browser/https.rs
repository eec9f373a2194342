//! The page's API over HTTPS needs a verifier token (a client pinned to the node's certificate).

use super::*;

// ---- the page's API with a plain HTTPS client (no browser: runs always) ----

/// The page's API over HTTPS, as any client sees it: the three POST routes need a verifier's
/// token (401 without or with an unknown one, 403 for an issuer's), JSON, and no foreign
/// origin; with the test token a verify answers the verdict. The page itself carries the CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_api_needs_a_verifier_token_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let gd = start(&init_node_with_page(dir.path(), GUANGDONG).await).await;
    let page = gd.http_addr.expect("Guangdong serves the page");
    let cert = gd.tls_cert.clone().expect("a TLS node");
    let token = format!("Bearer {}", test_token(&gd));
    let issuer = format!(
        "Bearer {}",
        add_caller(&gd, "issuer-only", &[proto::CallerRole::Issuer]).await
    );
    let code = issue(&gd, subject("王建国", "440104", 131), G, 300)
        .await
        .code;
    let client = https_client(&cert);
    let base = format!("https://{page}");
    let verify = format!("{base}/api/verify");
    let body = json!({ "code": code, "checkpoint_id": "api-gate" }).to_string();
    const JSON: (&str, &str) = ("content-type", "application/json");

    // The page: served with the strict CSP (no inline script or style anywhere).
    let r = send(&client, "GET", &format!("{base}/"), &[], "").await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy");
    for want in [
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(want), "CSP {csp:?} without {want:?}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = String::from_utf8(r.body.clone()).unwrap();
    assert!(html.contains("id=\"login\"") && html.contains("type=\"password\""));
    for bad in ["<script>", " style=", " onclick=", " onload=", " onsubmit="] {
        assert!(!html.contains(bad), "inline {bad:?} in the page");
    }
    for asset in [
        "/app.js",
        "/vehicle.js",
        "/app.css",
        "/vendor/jsqr/jsQR.js",
        "/vendor/jsqr/LICENSE",
    ] {
        let r = send(&client, "GET", &format!("{base}{asset}"), &[], "").await;
        assert_eq!(r.status, 200, "{asset}");
    }
    // The vendored decoder is served with its licence, by the node itself.
    let r = send(
        &client,
        "GET",
        &format!("{base}/vendor/jsqr/LICENSE"),
        &[],
        "",
    )
    .await;
    assert!(r.text().contains("Apache License"), "{}", r.text());

    // /api/info stays open.
    let r = send(&client, "GET", &format!("{base}/api/info"), &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["province"], "440000");

    // No token: 401, a JSON error, WWW-Authenticate: Bearer.
    let r = send(&client, "POST", &verify, &[JSON], &body).await;
    assert_eq!(r.status, 401, "{:?}", r.text());
    assert_eq!(r.header("www-authenticate"), "Bearer");
    assert!(r.error().contains("verifier"), "{}", r.error());
    // An unknown token: 401.
    let r = send(
        &client,
        "POST",
        &verify,
        &[
            JSON,
            (
                "authorization",
                "Bearer hcmr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.text());
    assert!(
        r.error().contains("unknown or removed API token"),
        "{}",
        r.error()
    );

    // A foreign Origin, even with a good token: 403 (CSRF guard); so is a cross-site fetch.
    let r = send(
        &client,
        "POST",
        &verify,
        &[
            JSON,
            ("authorization", &token),
            ("origin", "https://evil.example"),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());
    assert!(r.error().contains("cross-site"), "{}", r.error());
    let r = send(
        &client,
        "POST",
        &verify,
        &[
            JSON,
            ("authorization", &token),
            ("sec-fetch-site", "cross-site"),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());

    // Not JSON (what a cross-site form could send): 415.
    let r = send(
        &client,
        "POST",
        &verify,
        &[("content-type", "text/plain"), ("authorization", &token)],
        &body,
    )
    .await;
    assert_eq!(r.status, 415, "{:?}", r.text());
    assert!(r.error().contains("application/json"), "{}", r.error());

    // An issuer's token: 403, naming the role it lacks; the same for the login.
    let r = send(
        &client,
        "POST",
        &verify,
        &[JSON, ("authorization", &issuer)],
        &body,
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());
    assert!(r.error().contains("needs role verifier"), "{}", r.error());
    let login = format!("{base}/api/login");
    let r = send(
        &client,
        "POST",
        &login,
        &[JSON, ("authorization", &issuer)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());

    // The test token: the login names the caller, and a verify answers the verdict (also with
    // the page's own Origin, as a browser sends it).
    let r = send(
        &client,
        "POST",
        &login,
        &[JSON, ("authorization", &token)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.text());
    assert_eq!(r.json(), json!({ "caller": "test" }));
    let origin = format!("https://{page}");
    for headers in [
        vec![JSON, ("authorization", token.as_str())],
        vec![
            JSON,
            ("authorization", token.as_str()),
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    ] {
        let r = send(&client, "POST", &verify, &headers, &body).await;
        assert_eq!(r.status, 200, "{:?}", r.text());
        assert_eq!(r.header("cache-control"), "no-store");
        let v = r.json();
        assert_eq!(v["recognized"], true, "{v}");
        assert_eq!(v["verdict"], "RECOGNIZED", "{v}");
        assert_eq!(v["reason"], "ok", "{v}");
        assert_eq!(v["local_status"], "green", "{v}");
        assert_eq!(v["issuer"]["code"], "440000", "{v}");
        assert_eq!(v["subject"]["masked_name"], "王*国", "{v}");
        // Times for people in the node's display offset (+08:00 by default), the API's in UTC
        // seconds, the same instants.
        let secs = |k: &str| v[k].as_u64().unwrap();
        for k in ["verified_at", "status_valid_until", "exp"] {
            assert_eq!(
                v["shown"][k],
                hcmr::display::display_time(hcmr::UnixTime::from_secs(secs(k)), Default::default()),
                "{v}"
            );
        }
        assert!(v["shown"]["verified_at"]
            .as_str()
            .unwrap()
            .ends_with("+08:00"));
    }

    // The identity match is guarded the same way.
    let r = send(
        &client,
        "POST",
        &format!("{base}/api/identity-match"),
        &[JSON],
        &json!({ "code": code, "document_number": "x" }).to_string(),
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.text());

    gd.shutdown().await.unwrap();
}

/// An answer of the page's server.
pub(super) struct Answer {
    pub(super) status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(super) fn json(&self) -> Value {
        assert!(
            self.header("content-type").starts_with("application/json"),
            "{:?}: {}",
            self.header("content-type"),
            self.text()
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// The `error` of a JSON error answer.
    pub(super) fn error(&self) -> String {
        let v = self.json();
        let e = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {v}"));
        assert!(!e.is_empty());
        e.to_string()
    }
}

pub(super) type Https = hyper_util::client::legacy::Client<PinnedTls, String>;

/// An HTTP/1.1 client over TLS that trusts only the node's certificate.
pub(super) fn https_client(cert: &Path) -> Https {
    // The node's client config (the certificate pinned), with ALPN http/1.1 instead of h2.
    let mut config = (*hcmr::tls::pinned_client_config(cert).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = PinnedTls(tokio_rustls::TlsConnector::from(Arc::new(config)));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

pub(super) async fn send(
    client: &Https,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(body.to_string()).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap_or_else(|_| panic!("{method} {url}: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let status = r.status().as_u16();
    let (parts, incoming) = r.into_parts();
    let body = axum::body::to_bytes(axum::body::Body::new(incoming), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers: parts.headers,
        body,
    }
}

/// Connects the hyper client: TCP, then TLS with the pinned config.
#[derive(Clone)]
pub(super) struct PinnedTls(tokio_rustls::TlsConnector);

impl tower::Service<http::Uri> for PinnedTls {
    type Response = hyper_util::rt::TokioIo<TlsConn>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            let host = uri
                .host()
                .ok_or_else(|| bad(format!("{uri}: no host")))?
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let name =
                rustls::pki_types::ServerName::try_from(host).map_err(|e| bad(e.to_string()))?;
            let stream = tls.connect(name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(TlsConn(stream)))
        })
    }
}

/// A client TLS stream the hyper client can use.
pub(super) struct TlsConn(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl hyper_util::client::legacy::connect::Connection for TlsConn {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

impl tokio::io::AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
