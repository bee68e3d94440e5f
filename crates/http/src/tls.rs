//! TLS: TLS 1.2 and 1.3 only, AEAD cipher suites only (rustls offers no others), and a
//! self-signed certificate created once in the data folder when none is configured.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate came from, for the start-up message.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub cert_path: PathBuf,
    /// True when scopegate made the certificate itself.
    pub self_signed: bool,
}

/// A TLS set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("creating the self-signed certificate: {0}")]
    Generate(String),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads the configured certificate and key, or the self-signed pair of the data folder
/// (created on first use).
pub fn setup(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path, self_signed) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        (None, None) => {
            let c = data_dir.join("tls-cert.pem");
            let k = data_dir.join("tls-key.pem");
            if !c.exists() || !k.exists() {
                generate_self_signed(&c, &k)?;
            }
            (c, k, true)
        }
        _ => {
            return Err(file_err(
                cert.or(key).unwrap_or(Path::new("")),
                "give both --tls-cert and --tls-key, or neither",
            ))
        }
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        cert_path,
        self_signed,
    })
}

fn generate_self_signed(cert: &Path, key: &Path) -> Result<(), TlsError> {
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(key, generated.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, generated.cert.pem()).map_err(|e| file_err(cert, e))?;
    Ok(())
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    scopegate_app::files::write_private(path, contents).map_err(|e| file_err(path, e))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let f = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(f))
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let f = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    rustls_pemfile::private_key(&mut BufReader::new(f))
        .map_err(|e| file_err(path, e))?
        .ok_or_else(|| file_err(path, "no PEM private key in the file"))
}
