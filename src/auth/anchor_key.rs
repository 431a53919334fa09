//! The Ed25519 key that signs anchors and backup manifests. It lives in a
//! file outside the database (mode 0600, PKCS#8 PEM, readable by OpenSSL),
//! so that whoever can rewrite the database can't sign what they rewrote.

use crate::domain::anchor::key_id;
use anyhow::{Context, bail};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The signing key and its id.
#[derive(Clone)]
pub struct AnchorKey {
    signing: SigningKey,
    /// First 16 hex digits of SHA-256 of the public key.
    pub key_id: String,
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AnchorKey {
    /// Reads the key file, or creates it (mode 0600) with a new key when it
    /// does not exist. A key file others may read is refused.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match fs::read_to_string(path) {
            Ok(pem) => {
                let mode = fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    bail!(
                        "the anchor key {} may be read by others (mode {:o}): chmod 600 it",
                        path.display(),
                        mode & 0o777
                    );
                }
                let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                    anyhow::anyhow!("reading the anchor key {}: {e}", path.display())
                })?;
                Ok(Self::from_signing(signing))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(e).with_context(|| format!("reading the anchor key {}", path.display())),
        }
    }

    /// The public key of an existing key file, for checking only: a
    /// missing file is an error, never a new key.
    pub fn public_of(path: &Path) -> anyhow::Result<PublicKey> {
        if !path.exists() {
            bail!(
                "no anchor key at {}: give the site's public key with --public-key (GET /api/v1/audit/anchor-key)",
                path.display()
            );
        }
        Ok(Self::load_or_create(path)?.verifying())
    }

    fn create(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let signing = SigningKey::from_bytes(&seed);
        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the anchor key: {e}"))?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the anchor key {}", path.display()))?;
        file.write_all(pem.as_bytes())?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "created the anchor signing key: keep a copy offline, never beside the backups");
        Ok(Self::from_signing(signing))
    }

    fn from_signing(signing: SigningKey) -> Self {
        let key_id = key_id(signing.verifying_key().as_bytes());
        AnchorKey { signing, key_id }
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// The public key, for verification.
    pub fn verifying(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Ed25519 signature of `message`, hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.seal(message))
    }

    /// Ed25519 signature of `message`, its 64 bytes.
    pub fn seal(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// A public key that checks signatures.
#[derive(Debug, Clone, Copy)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From hex (as `GET /audit/anchor-key` publishes it).
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .context("the public key is not hex")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("an Ed25519 public key is 32 bytes"))?;
        Ok(PublicKey(
            VerifyingKey::from_bytes(&bytes).context("not an Ed25519 public key")?,
        ))
    }

    /// Its id.
    pub fn key_id(&self) -> String {
        key_id(self.0.as_bytes())
    }

    /// Whether `signature_hex` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature_hex: &str) -> bool {
        let Ok(bytes) = hex::decode(signature_hex) else {
            return false;
        };
        self.verifies_seal(message, &bytes)
    }

    /// Whether `seal` (64 bytes) is this key's signature of `message`.
    pub fn verifies_seal(&self, message: &[u8], seal: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(seal) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok()
    }

    /// Whether every `(message, seal)` is this key's signature, checked as
    /// one batch (ed25519-dalek's `verify_batch`: about half the work of
    /// one check each). False if any one is not; then [`Self::verifies_seal`]
    /// on each says which.
    pub fn verifies_seals(&self, sealed: &[(&[u8], &[u8])]) -> bool {
        let mut messages = Vec::with_capacity(sealed.len());
        let mut signatures = Vec::with_capacity(sealed.len());
        for (message, seal) in sealed {
            let Ok(sig) = Signature::from_slice(seal) else {
                return false;
            };
            messages.push(*message);
            signatures.push(sig);
        }
        let keys = vec![self.0; sealed.len()];
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_seals_verifies_only_when_every_one_does() {
        let dir = tempfile::tempdir().unwrap();
        let key = AnchorKey::load_or_create(&dir.path().join("k.pem")).unwrap();
        let public = key.verifying();
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("signature {i}").into_bytes())
            .collect();
        let seals: Vec<[u8; 64]> = messages.iter().map(|m| key.seal(m)).collect();
        let batch: Vec<(&[u8], &[u8])> = messages
            .iter()
            .zip(&seals)
            .map(|(m, s)| (m.as_slice(), s.as_slice()))
            .collect();
        assert!(public.verifies_seals(&batch));
        assert!(public.verifies_seals(&[]));
        let mut forged = batch.clone();
        forged[7].0 = b"signature 8";
        assert!(!public.verifies_seals(&forged));
        let short = [0u8; 10];
        let mut malformed = batch.clone();
        malformed[3].1 = &short;
        assert!(!public.verifies_seals(&malformed));
    }

    #[test]
    fn a_new_key_file_is_private_and_signs_what_its_public_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/anchor.key");
        let key = AnchorKey::load_or_create(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = AnchorKey::load_or_create(&path).unwrap();
        assert_eq!(again.key_id, key.key_id);
        let sig = key.sign(b"root");
        let public = PublicKey::from_hex(&key.public_hex()).unwrap();
        assert_eq!(public.key_id(), key.key_id);
        assert!(public.verifies(b"root", &sig));
        assert!(!public.verifies(b"toor", &sig));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(AnchorKey::load_or_create(&path).is_err());
    }
}
