//! The server key, which seals access-key secrets at rest.
//!
//! HMAC verification needs the secret itself, so secrets cannot be hashed like
//! passwords; they are encrypted (ChaCha20-Poly1305, a fresh nonce each, the access key
//! as associated data so a sealed secret cannot be moved to another key). The key lives
//! in a file of the data directory readable only by its owner, or comes from the
//! environment or configuration, so that several replicas can share it.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot read or create the server key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the server key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error(
        "a sealed secret could not be opened: it was sealed with another server key or is damaged"
    )]
    Unseal,
}

/// Seals and opens secrets with the server key.
pub struct Vault {
    cipher: ChaCha20Poly1305,
    fingerprint: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<server key>)")
    }
}

impl Vault {
    /// A vault from a key given as 64 hex characters.
    pub fn from_hex(hex_key: &str) -> Result<Self, VaultError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| VaultError::BadKey)?;
        if bytes.len() != 32 {
            return Err(VaultError::BadKey);
        }
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&bytes)
            .map_err(|_| VaultError::BadKey)?;
        mac.update(b"tagd server key check");
        let fingerprint = hex::encode(&mac.finalize().into_bytes()[..16]);
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            fingerprint,
        })
    }

    /// Reads the key file, creating it (mode 0600, 32 random bytes as hex) if missing.
    pub fn open_or_create(path: &Path) -> Result<Self, VaultError> {
        let io = |source| VaultError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let text = hex::encode(key);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
                file.write_all(text.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Self::from_hex(&text)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A value that identifies the key without revealing it, recorded in the store so
    /// that a process started with another key refuses to run instead of failing on
    /// every signed request.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Reads the key file; never creates one.
    pub fn open_existing(path: &Path) -> Result<Self, VaultError> {
        let text = std::fs::read_to_string(path).map_err(|source| VaultError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text)
    }

    /// Seals `secret` for the access key `access`: nonce || ciphertext.
    pub fn seal(&self, access: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: access.as_bytes(),
                },
            )
            // Encryption only fails for messages beyond the AEAD's size limit (~256 GiB).
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Opens a sealed secret of the access key `access`.
    pub fn unseal(&self, access: &str, sealed: &[u8]) -> Result<String, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: access.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Unseal)?;
        String::from_utf8(plain).map_err(|_| VaultError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_only_with_their_key_and_access_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.key");
        let vault = Vault::open_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = vault.seal("AK1", "secret-one");
        assert!(
            !sealed.windows(10).any(|w| w == b"secret-one"),
            "the secret is not stored in clear"
        );
        assert_eq!(vault.unseal("AK1", &sealed).expect("unseal"), "secret-one");
        assert!(
            vault.unseal("AK2", &sealed).is_err(),
            "bound to its access key"
        );
        let reopened = Vault::open_or_create(&path).expect("reopen");
        assert_eq!(
            reopened.unseal("AK1", &sealed).expect("unseal"),
            "secret-one"
        );
        let other = Vault::from_hex(&"ab".repeat(32)).expect("key");
        assert!(other.unseal("AK1", &sealed).is_err());
        assert!(Vault::from_hex("abcd").is_err());
        assert_ne!(
            vault.seal("AK1", "x"),
            vault.seal("AK1", "x"),
            "fresh nonce each time"
        );
    }
}
