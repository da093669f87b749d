//! The vendor's ed25519 signing key: generated into a file only its owner
//! can read, and loaded from `--key-file` (or `PLINTH_VENDOR_KEY_FILE`) or
//! from the `PLINTH_VENDOR_KEY` environment variable, never from a file in
//! the repository.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use plinth_package::VendorKey;

use crate::error::VendorError;

/// Environment variable holding the key's hex seed.
pub const KEY_ENV: &str = "PLINTH_VENDOR_KEY";

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// The hex seed itself (from [`KEY_ENV`]).
    Hex(String),
}

impl KeySource {
    /// `--key-file` wins over [`KEY_ENV`]; `None` when neither is set.
    pub fn from_options(key_file: Option<PathBuf>) -> Option<Self> {
        key_file.map(KeySource::File).or_else(|| {
            std::env::var(KEY_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(KeySource::Hex)
        })
    }

    pub fn load(&self) -> Result<VendorKey, VendorError> {
        let (name, text) = match self {
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    if source.kind() == std::io::ErrorKind::NotFound {
                        VendorError::BadKey {
                            source_name: path.display().to_string(),
                            reason: "the file does not exist; point --key-file (or PLINTH_VENDOR_KEY_FILE) at the key, or create one with `plinth-vendor key generate --out <file>`".to_string(),
                        }
                    } else {
                        VendorError::Read {
                            path: path.clone(),
                            source,
                        }
                    }
                })?;
                warn_if_readable_by_others(path);
                (path.display().to_string(), text)
            }
            KeySource::Hex(hex) => (KEY_ENV.to_string(), hex.clone()),
        };
        VendorKey::from_hex(&text).map_err(|e| VendorError::BadKey {
            source_name: name,
            reason: e.to_string(),
        })
    }
}

/// Loads the key, or says how to provide one.
pub fn require(source: Option<&KeySource>) -> Result<VendorKey, VendorError> {
    source.ok_or(VendorError::NoKey)?.load()
}

/// Writes a new key's hex seed to `out` (mode 0600, never overwriting)
/// and returns the key.
pub fn generate(out: &Path) -> Result<VendorKey, VendorError> {
    let key = VendorKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(out).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            VendorError::KeyFileExists(out.to_owned())
        } else {
            VendorError::Write {
                path: out.to_owned(),
                source,
            }
        }
    })?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| VendorError::Write {
            path: out.to_owned(),
            source,
        })?;
    Ok(key)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the signing key file is readable by other users; run chmod 600 on it"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generate_writes_a_private_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vendor.key");
        let key = generate(&out).unwrap();
        let loaded = KeySource::File(out.clone()).load().unwrap();
        assert_eq!(loaded.public_hex(), key.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(generate(&out), Err(VendorError::KeyFileExists(_))));
        assert_eq!(
            KeySource::File(out).load().unwrap().public_hex(),
            key.public_hex()
        );
    }

    #[test]
    fn a_bad_key_names_its_source() {
        let e = KeySource::Hex("nope".into())
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains(KEY_ENV) && e.contains("64 hex"), "{e}");
        assert!(
            require(None)
                .unwrap_err()
                .to_string()
                .contains("--key-file")
        );
    }
}
