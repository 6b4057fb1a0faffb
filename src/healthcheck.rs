//! `tagd healthcheck`: the probe a container runtime runs inside tagd's own image, where
//! there may be no curl. It asks the local server's `/readyz` (or `/healthz`) and
//! exits 0 only on a 200.
//!
//! One `GET` with `Connection: close`, and the status line read back: a probe needs
//! nothing more, so no HTTP client library is pulled in. Over HTTPS the certificate is
//! not verified: the probe talks to its own server on a local address, sends no
//! credential and reads nothing but a status code, so there is nothing to protect, and
//! a certificate issued for a public name would not match the local address anyway.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// What to probe.
pub struct Probe {
    /// The server's listen address; an unspecified one (0.0.0.0, ::) is reached on loopback.
    pub addr: SocketAddr,
    pub https: bool,
    /// `/readyz` or `/healthz`.
    pub path: &'static str,
    pub timeout: Duration,
}

/// Runs the probe; `Ok` with the status line's text on a 200, an error saying what
/// went wrong otherwise.
pub async fn run(probe: &Probe) -> anyhow::Result<String> {
    let mut addr = probe.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let answer = tokio::time::timeout(probe.timeout, exchange(addr, probe))
        .await
        .with_context(|| format!("no answer from {addr} within {:?}", probe.timeout))??;
    let status_line = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .unwrap_or_default();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(format!("{status_line} {body}")),
        Some(_) => bail!("{} answered {status_line} {body}", probe.path),
        None => bail!("{addr} did not answer HTTP: {status_line:?}"),
    }
}

async fn exchange(addr: SocketAddr, probe: &Probe) -> anyhow::Result<String> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: tagd-healthcheck\r\n\r\n",
        probe.path
    );
    if !probe.https {
        return send(stream, &request).await;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate))
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS handshake with {addr} failed"))?;
    send(stream, &request).await
}

/// Sends `request` and reads the whole answer (the server closes after it); at most
/// 64 KiB, which is far more than a health answer.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> anyhow::Result<String> {
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    let mut limited = (&mut stream).take(64 * 1024);
    // A TLS peer may close without close_notify; what was read is still the answer.
    if let Err(e) = limited.read_to_end(&mut answer).await {
        if answer.is_empty() {
            return Err(e.into());
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Accepts any server certificate (see the module docs for why a local probe may).
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
