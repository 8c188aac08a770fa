//! The agent's Ed25519 identity: signs the coordinator's handshake nonce.
//!
//! Key file format (JSON, one object, written with mode 0600):
//!
//! ```json
//! {"format":"provider-agent-ed25519-v1","secret_key":"<base64 32 bytes>","public_key":"<base64 32 bytes>"}
//! ```
//!
//! `public_key` is redundant with `secret_key`; it is stored so an operator
//! can read the agent's public key without running it, and checked on load
//! so a hand-edited or half-copied file is caught ("mismatched key") instead
//! of silently giving the agent a different identity.
//!
//! Secrets never reach logs or errors: `Identity`'s `Debug` prints only the
//! public key, and no error message quotes the file's content.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The `format` tag of the key file.
pub const KEY_FILE_FORMAT: &str = "provider-agent-ed25519-v1";
/// Largest key file read. The real file is about 150 bytes.
pub const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: key file is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: mismatched key: the stored public key does not belong to the stored secret key")]
    MismatchedKey { path: PathBuf },
    #[error("{path}: key file is readable by other users (mode {mode:04o}); run `chmod 600` on it")]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// An Ed25519 signing key. Cloning copies the secret (it is zeroed on drop
/// by ed25519-dalek).
#[derive(Clone)]
pub struct Identity {
    signing_key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Identity {
    /// Identities are equal when their public keys are (the public key is a
    /// function of the secret).
    fn eq(&self, other: &Self) -> bool {
        self.verifying_key() == other.verifying_key()
    }
}

impl Eq for Identity {}

impl Identity {
    /// The identity whose secret key is `secret`.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Identity {
        Identity {
            signing_key: SigningKey::from_bytes(&secret),
        }
    }

    /// A new identity from 32 bytes of the caller's RNG (a seeded RNG inside
    /// the simulation, OS randomness in production).
    pub fn generate(rng: &mut impl rand::RngCore) -> Identity {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let identity = Identity::from_secret_bytes(secret);
        secret.fill(0);
        identity
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// Standard padded base64 of the 32-byte public key (`auth_response.pubkey`).
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.verifying_key().as_bytes())
    }

    /// Standard base64 of the 64-byte pure-Ed25519 signature over `message`.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        B64.encode(self.signing_key.sign(message).to_bytes())
    }
}

/// The key file's JSON shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    secret_key: String,
    public_key: String,
}

/// Loads the identity at `path`, or creates it (parent directories too) from
/// `rng` when the file does not exist. See the module docs for the format.
pub fn load_or_create(path: &Path, rng: &mut impl rand::RngCore) -> Result<Identity, IdentityError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => load(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let identity = Identity::generate(rng);
            store(path, &identity)?;
            Ok(identity)
        }
        Err(source) => Err(IdentityError::Io {
            path: path.to_owned(),
            action: "cannot inspect key file",
            source,
        }),
    }
}

/// Loads an existing key file, checking its permissions, format and that
/// its public key matches its secret key.
pub fn load(path: &Path) -> Result<Identity, IdentityError> {
    let io_error = |action| {
        move |source| IdentityError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let metadata = std::fs::metadata(path).map_err(io_error("cannot inspect key file"))?;
    check_permissions(path, &metadata)?;
    if metadata.len() > KEY_FILE_BYTES_MAX {
        return Err(malformed(
            path,
            format!(
                "{} bytes, more than the {KEY_FILE_BYTES_MAX}-byte limit",
                metadata.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(io_error("cannot read key file"))?;
    // serde_json's messages name a position, a field or a non-string value;
    // every field is a string, so a secret (a string) is never quoted.
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| malformed(path, e.to_string()))?;
    if file.format != KEY_FILE_FORMAT {
        return Err(malformed(
            path,
            format!("format is {:?}, expected {KEY_FILE_FORMAT:?}", file.format),
        ));
    }
    let secret =
        decode_32(&file.secret_key).ok_or_else(|| malformed(path, "secret_key is not base64 of 32 bytes".into()))?;
    let public =
        decode_32(&file.public_key).ok_or_else(|| malformed(path, "public_key is not base64 of 32 bytes".into()))?;
    let identity = Identity::from_secret_bytes(secret);
    if identity.verifying_key().as_bytes() != &public {
        return Err(IdentityError::MismatchedKey { path: path.to_owned() });
    }
    Ok(identity)
}

fn decode_32(text: &str) -> Option<[u8; 32]> {
    B64.decode(text.trim()).ok()?.try_into().ok()
}

fn malformed(path: &Path, reason: String) -> IdentityError {
    IdentityError::Malformed {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path, metadata: &std::fs::Metadata) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), IdentityError> {
    Ok(())
}

/// Writes `identity` to `path` atomically, never readable by others (see
/// [`crate::private_file`]).
fn store(path: &Path, identity: &Identity) -> Result<(), IdentityError> {
    let file = KeyFile {
        format: KEY_FILE_FORMAT.to_owned(),
        secret_key: B64.encode(identity.signing_key.to_bytes()),
        public_key: identity.public_key_b64(),
    };
    let mut text = serde_json::to_string(&file).map_err(|e| malformed(path, e.to_string()))?;
    text.push('\n');
    let written = crate::private_file::replace(path, text.as_bytes());
    text.clear();
    written.map_err(|e| IdentityError::Io {
        path: e.path,
        action: e.action,
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_file::write_private;
    use ed25519_dalek::{Signature, Verifier as _};
    use rand::SeedableRng as _;
    use rand_chacha::ChaCha8Rng;

    /// A fresh directory under the system temp dir, unique per test name and
    /// process, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("provider-agent-identity-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    /// Proves a created key file has mode 0600, leaves no temp file, and reloads to the same identity.
    #[test]
    fn create_then_reload_gives_the_same_identity() {
        let dir = TempDir::new("reload");
        let path = dir.0.join("nested/dir/key.json");
        let created = load_or_create(&path, &mut rng()).expect("create");
        let reloaded = load_or_create(&path, &mut ChaCha8Rng::seed_from_u64(99)).expect("reload");
        assert_eq!(created, reloaded);
        assert!(
            !path.with_file_name("key.json.tmp").exists(),
            "temporary file left behind"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    /// Proves key generation depends only on the caller's RNG.
    #[test]
    fn generation_is_determined_by_the_rng() {
        assert_eq!(Identity::generate(&mut rng()), Identity::generate(&mut rng()));
        assert_ne!(
            Identity::generate(&mut rng()),
            Identity::generate(&mut ChaCha8Rng::seed_from_u64(8))
        );
    }

    /// Proves a key file whose public key does not match its secret is rejected as mismatched.
    #[test]
    fn mismatched_public_key_is_rejected() {
        let dir = TempDir::new("mismatch");
        let path = dir.0.join("key.json");
        let other = Identity::from_secret_bytes([9; 32]).public_key_b64();
        let text = format!(
            r#"{{"format":"{KEY_FILE_FORMAT}","secret_key":"{}","public_key":"{other}"}}"#,
            B64.encode([1u8; 32])
        );
        write_private(&path, text.as_bytes()).expect("write");
        let err = load(&path).expect_err("mismatch");
        assert!(matches!(err, IdentityError::MismatchedKey { .. }), "{err}");
        assert!(err.to_string().contains("mismatched key"));
    }

    /// Proves corrupt key files are rejected as malformed without quoting their content.
    #[test]
    fn corrupt_file_is_rejected_without_echoing_content() {
        let dir = TempDir::new("corrupt");
        let path = dir.0.join("key.json");
        for content in [
            "not json SECRETSECRET",
            r#"{"format":"x","secret_key":"SECRETSECRET","public_key":""}"#,
        ] {
            let _ = std::fs::remove_file(&path);
            write_private(&path, content.as_bytes()).expect("write");
            let err = load(&path).expect_err("corrupt");
            let message = err.to_string();
            assert!(matches!(err, IdentityError::Malformed { .. }), "{message}");
            assert!(
                message.contains("key.json") && !message.contains("SECRETSECRET"),
                "{message}"
            );
        }
        let _ = std::fs::remove_file(&path);
        let bad_b64 = format!(r#"{{"format":"{KEY_FILE_FORMAT}","secret_key":"AAAA","public_key":"AAAA"}}"#);
        write_private(&path, bad_b64.as_bytes()).expect("write");
        assert!(
            load(&path)
                .expect_err("short key")
                .to_string()
                .contains("secret_key is not base64 of 32 bytes")
        );
    }

    /// Proves a key file readable by group or others is rejected with a chmod hint.
    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_file_is_rejected() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = TempDir::new("perms");
        let path = dir.0.join("key.json");
        load_or_create(&path, &mut rng()).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load(&path).expect_err("insecure");
        assert!(
            matches!(err, IdentityError::InsecurePermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    /// Proves sign_b64 produces a pure Ed25519 signature that verifies under public_key_b64.
    #[test]
    fn signature_verifies_with_the_public_key() {
        let identity = Identity::generate(&mut rng());
        let nonce = b"nonce bytes from the coordinator";
        let signature_bytes: [u8; 64] = B64
            .decode(identity.sign_b64(nonce))
            .expect("base64")
            .try_into()
            .expect("64 bytes");
        let public: [u8; 32] = B64
            .decode(identity.public_key_b64())
            .expect("base64")
            .try_into()
            .expect("32 bytes");
        let key = VerifyingKey::from_bytes(&public).expect("valid point");
        key.verify(nonce, &Signature::from_bytes(&signature_bytes))
            .expect("verifies");
        assert!(
            key.verify(b"other message", &Signature::from_bytes(&signature_bytes))
                .is_err()
        );
    }

    /// Proves Debug shows the public key and never the secret.
    #[test]
    fn debug_does_not_print_the_secret() {
        let secret = [0xAB; 32];
        let identity = Identity::from_secret_bytes(secret);
        let debug = format!("{identity:?}");
        assert!(!debug.contains(&B64.encode(secret)), "{debug}");
        assert!(debug.contains(&identity.public_key_b64()));
    }
}
