//! Signed deployment manifests: the exact package versions a customer's
//! host should run, as pushed by the vendor server.
//!
//! The vendor builds a [`DeploymentManifest`], serializes it to canonical
//! JSON ([`DeploymentManifest::to_canonical_json`]) and signs those bytes
//! with its ed25519 [`VendorKey`]. What travels over the websocket is a
//! [`SignedDeployment`]: the JSON text exactly as signed, the base64
//! signature and the id of the key that made it.
//!
//! The host pins the vendor's public key (`vendor.public_key` in
//! `config.json`, read with [`VendorPublicKey::from_hex`]) and calls
//! [`SignedDeployment::verify`], which checks the signature over the exact
//! bytes received *before* it parses anything, then the body: customer,
//! validity window (with some clock skew allowed for `issued_at`) and the
//! shape of every package. Only a manifest that passes all of that is
//! handed back; the host downloads nothing before.
//!
//! # What is not checked here
//!
//! Everything here is stateless. Replay protection across deployments
//! (refusing a `deployment_id` already applied, refusing an older
//! deployment after a newer one, package versions only moving up unless the
//! vendor explicitly rolls back) needs state the host keeps, so the host
//! does it after [`SignedDeployment::verify`] succeeds. The expiry window
//! bounds how long a captured deployment can be replayed at all. Package
//! archives are checked against the `sha256` and `size` listed here when
//! they are downloaded, and then by [`crate::unpack`].

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::name_problem;

/// Largest manifest text [`SignedDeployment::verify`] looks at, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// A sensible [`Expectations::max_clock_skew_secs`]: five minutes.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Longest package download path, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// What every refusal of a deployment's contents tells the operator to do.
const REISSUE: &str = "ask the vendor to issue and sign a corrected deployment";

/// One package the customer should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentPackage {
    /// The package name, with the same syntax as `name` in `plugin.toml`.
    pub name: String,
    pub version: Version,
    /// Size of the package archive in bytes.
    pub size: u64,
    /// SHA-256 of the package archive, 64 lowercase hex characters.
    pub sha256: String,
    /// Download path on the vendor server, e.g. `/packages/goods/1.1.0`.
    pub url: String,
}

/// The unsigned body of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentManifest {
    /// The customer this deployment is for.
    pub customer: String,
    /// Unique per deployment; the host uses it to refuse replays.
    pub deployment_id: String,
    /// When the vendor issued it, in unix seconds.
    pub issued_at: i64,
    /// Hosts refuse it from this moment on, in unix seconds.
    pub expires_at: i64,
    /// The packages, in install (dependency) order.
    pub packages: Vec<DeploymentPackage>,
}

/// What goes over the wire: the body as canonical JSON text plus its
/// signature. Unknown fields are refused: they would sit outside what the
/// signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDeployment {
    /// The exact JSON text that was signed.
    pub manifest: String,
    /// Base64 (standard alphabet, padded) of the 64-byte ed25519 signature.
    pub signature: String,
    /// [`VendorKey::key_id`] of the key that signed: the first 16 hex
    /// characters of SHA-256 of its public key.
    pub key_id: String,
}

/// What a verifying host knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectations<'a> {
    /// The customer this host belongs to.
    pub customer: &'a str,
    /// The current time, in unix seconds.
    pub now: i64,
    /// How far in the future `issued_at` may be, to allow for clocks that
    /// disagree (see [`DEFAULT_MAX_CLOCK_SKEW_SECS`]). Negative counts as 0.
    pub max_clock_skew_secs: i64,
}

/// Why a key or a deployment was refused. Every message says what to do
/// next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    /// A key in hex could not be read.
    #[error("{0}")]
    BadKey(String),
    /// The signature does not match the manifest text under the pinned key.
    #[error(
        "the deployment's signature does not match its contents: it was altered on the way or not signed by the vendor; nothing was installed, ask the vendor to push the deployment again"
    )]
    BadSignature,
    /// The deployment names a different signing key than the pinned one.
    #[error(
        "the deployment is signed by key {got} but this host trusts key {expected}: check vendor.public_key in config.json (the vendor may have rotated its key)"
    )]
    WrongKey { expected: String, got: String },
    /// The signed text is not a valid deployment manifest.
    #[error("the deployment manifest is malformed: {0}; {REISSUE}")]
    Malformed(String),
    /// The deployment is for another customer.
    #[error(
        "the deployment is for customer {got:?} but this host belongs to customer {expected:?}: check vendor.customer_token in config.json and report the mix-up to the vendor"
    )]
    WrongCustomer { expected: String, got: String },
    /// `expires_at` has passed.
    #[error(
        "the deployment expired at {expires_at} (unix seconds) and it is now {now}: ask the vendor to push a fresh deployment, or fix this host's clock if it is wrong"
    )]
    Expired { expires_at: i64, now: i64 },
    /// `issued_at` is further in the future than the allowed clock skew.
    #[error(
        "the deployment was issued at {issued_at} (unix seconds), which is in the future: it is now {now} on this host; fix this host's clock (e.g. enable NTP) and let the vendor push again"
    )]
    NotYetValid { issued_at: i64, now: i64 },
    /// A package entry is not well formed.
    #[error("package {name:?} in the deployment {reason}; {REISSUE}")]
    BadPackage { name: String, reason: String },
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// The vendor's ed25519 signing key. Its `Debug` shows only the key id.
pub struct VendorKey(SigningKey);

impl VendorKey {
    /// A new random key from the operating system's random source.
    pub fn generate() -> Self {
        VendorKey(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Reads a key from its 32-byte seed as 64 hex characters, as written
    /// by [`VendorKey::to_hex`]. Surrounding whitespace is ignored.
    pub fn from_hex(secret_hex: &str) -> Result<Self, DeploymentError> {
        let seed = key_bytes(
            secret_hex,
            "the vendor signing key",
            "use the secret written by key generation, not the public key",
        )?;
        Ok(VendorKey(SigningKey::from_bytes(&seed)))
    }

    /// The 32-byte seed as 64 lowercase hex characters. This is the secret:
    /// store it like a password.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public key as 64 lowercase hex characters: what hosts pin in
    /// `vendor.public_key` in `config.json`.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    /// The first 16 hex characters of SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        key_id_of(&self.0.verifying_key())
    }

    /// The matching public key.
    pub fn public_key(&self) -> VendorPublicKey {
        VendorPublicKey(self.0.verifying_key())
    }

    /// Signs the manifest's canonical JSON. Refuses a manifest no host
    /// would accept (bad packages, empty ids, expiry not after issue), so
    /// mistakes show up at the vendor rather than on every host.
    pub fn sign(&self, manifest: &DeploymentManifest) -> Result<SignedDeployment, DeploymentError> {
        check_body(manifest)?;
        check_packages(&manifest.packages)?;
        Ok(self.sign_text(manifest.to_canonical_json()))
    }

    /// Signs `text` as is.
    fn sign_text(&self, text: String) -> SignedDeployment {
        let signature = self.0.sign(text.as_bytes());
        SignedDeployment {
            manifest: text,
            signature: BASE64.encode(signature.to_bytes()),
            key_id: self.key_id(),
        }
    }
}

impl fmt::Debug for VendorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// The vendor's ed25519 public key, as a host pins it.
#[derive(Clone, PartialEq, Eq)]
pub struct VendorPublicKey(VerifyingKey);

impl VendorPublicKey {
    /// Reads a public key from 64 hex characters. Surrounding whitespace is
    /// ignored; weak (small-order) keys are refused.
    pub fn from_hex(hex: &str) -> Result<Self, DeploymentError> {
        let bytes = key_bytes(
            hex,
            "the vendor public key",
            "check vendor.public_key in config.json",
        )?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            DeploymentError::BadKey(
                "the vendor public key is not a valid ed25519 public key: check vendor.public_key in config.json against the key the vendor published".to_string(),
            )
        })?;
        if key.is_weak() {
            return Err(DeploymentError::BadKey(
                "the vendor public key is a weak ed25519 key that anyone could sign for: check vendor.public_key in config.json against the key the vendor published".to_string(),
            ));
        }
        Ok(VendorPublicKey(key))
    }

    /// The public key as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The first 16 hex characters of SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        key_id_of(&self.0)
    }
}

impl fmt::Debug for VendorPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorPublicKey")
            .field("key_id", &self.key_id())
            .field("hex", &self.to_hex())
            .finish()
    }
}

fn key_id_of(key: &VerifyingKey) -> String {
    let mut id = hex::encode(Sha256::digest(key.as_bytes()));
    id.truncate(16);
    id
}

/// Decodes 32 bytes from 64 hex characters, naming `what` and `next` in
/// errors.
fn key_bytes(text: &str, what: &str, next: &str) -> Result<[u8; 32], DeploymentError> {
    let text = text.trim();
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DeploymentError::BadKey(format!(
            "{what} must be 64 hex characters (0-9, a-f) but contains other characters: {next}"
        )));
    }
    if text.len() != 64 {
        return Err(DeploymentError::BadKey(format!(
            "{what} must be 64 hex characters (32 bytes) but has {}: {next}",
            text.len()
        )));
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|e| DeploymentError::BadKey(format!("{what} is not valid hex ({e}): {next}")))?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Signing and verifying
// ---------------------------------------------------------------------------

impl DeploymentManifest {
    /// The manifest as compact JSON: fields in declaration order, no
    /// whitespace. The same manifest always gives the same text. Hosts
    /// verify the text they receive, never a re-serialization of it.
    pub fn to_canonical_json(&self) -> String {
        // Strings, integers and a semver version always serialize.
        serde_json::to_string(self).unwrap_or_else(|e| format!("could not serialize: {e}"))
    }
}

impl SignedDeployment {
    /// Checks, in this order, and only then parses: the manifest text is at
    /// most [`MAX_MANIFEST_BYTES`]; `key_id` is the pinned key's (so a
    /// mismatch says which key signed); the signature verifies over the
    /// exact `manifest` bytes under the pinned key (strict ed25519
    /// verification); the text parses as a [`DeploymentManifest`] with a
    /// non-empty `deployment_id` and `expires_at` after `issued_at`; the
    /// customer matches; `issued_at` is not further in the future than the
    /// allowed skew; it has not expired (`now < expires_at`); every package
    /// is well formed (name syntax as in `plugin.toml`, `sha256` 64
    /// lowercase hex, `size > 0`, no duplicate names, `url` a path on the
    /// vendor server starting with `/`).
    ///
    /// Replays of an older deployment are the host's to refuse (see the
    /// module docs).
    pub fn verify(
        &self,
        key: &VendorPublicKey,
        expect: &Expectations<'_>,
    ) -> Result<DeploymentManifest, DeploymentError> {
        if self.manifest.len() > MAX_MANIFEST_BYTES {
            return Err(DeploymentError::Malformed(format!(
                "the manifest text is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
                self.manifest.len()
            )));
        }
        let trusted = key.key_id();
        if self.key_id != trusted {
            return Err(DeploymentError::WrongKey {
                expected: trusted,
                got: self.key_id.clone(),
            });
        }
        let signature = decode_signature(&self.signature)?;
        key.0
            .verify_strict(self.manifest.as_bytes(), &signature)
            .map_err(|_| DeploymentError::BadSignature)?;

        let manifest = parse(&self.manifest)?;
        check_body(&manifest)?;
        if manifest.customer != expect.customer {
            return Err(DeploymentError::WrongCustomer {
                expected: expect.customer.to_string(),
                got: manifest.customer,
            });
        }
        let skew = expect.max_clock_skew_secs.max(0);
        if manifest.issued_at > expect.now.saturating_add(skew) {
            return Err(DeploymentError::NotYetValid {
                issued_at: manifest.issued_at,
                now: expect.now,
            });
        }
        if expect.now >= manifest.expires_at {
            return Err(DeploymentError::Expired {
                expires_at: manifest.expires_at,
                now: expect.now,
            });
        }
        check_packages(&manifest.packages)?;
        Ok(manifest)
    }
}

fn decode_signature(text: &str) -> Result<Signature, DeploymentError> {
    let bytes = BASE64
        .decode(text)
        .map_err(|_| DeploymentError::BadSignature)?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| DeploymentError::BadSignature)?;
    Ok(Signature::from_bytes(&bytes))
}

fn parse(text: &str) -> Result<DeploymentManifest, DeploymentError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let manifest: DeploymentManifest = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            DeploymentError::Malformed(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            })
        })?;
    deserializer
        .end()
        .map_err(|e| DeploymentError::Malformed(e.to_string()))?;
    Ok(manifest)
}

/// The checks on the body that do not depend on the verifying host.
fn check_body(manifest: &DeploymentManifest) -> Result<(), DeploymentError> {
    if manifest.customer.trim().is_empty() {
        return Err(DeploymentError::Malformed("customer is empty".to_string()));
    }
    if manifest.deployment_id.trim().is_empty() {
        return Err(DeploymentError::Malformed(
            "deployment_id is empty".to_string(),
        ));
    }
    if manifest.expires_at <= manifest.issued_at {
        return Err(DeploymentError::Malformed(format!(
            "expires_at ({}) is not after issued_at ({})",
            manifest.expires_at, manifest.issued_at
        )));
    }
    Ok(())
}

fn check_packages(packages: &[DeploymentPackage]) -> Result<(), DeploymentError> {
    let mut seen = BTreeSet::new();
    for package in packages {
        let bad = |reason: String| DeploymentError::BadPackage {
            name: package.name.clone(),
            reason,
        };
        if let Some(problem) = name_problem(&package.name) {
            return Err(bad(format!("has an invalid name: it {problem}")));
        }
        if !seen.insert(package.name.as_str()) {
            return Err(bad(
                "is listed more than once (a deployment holds one version of each package)"
                    .to_string(),
            ));
        }
        if package.sha256.len() != 64
            || !package
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!(
                "has sha256 {:?}, which is not 64 lowercase hex characters",
                package.sha256
            )));
        }
        if package.size == 0 {
            return Err(bad(
                "has size 0; a package archive is never empty".to_string()
            ));
        }
        if let Some(problem) = url_problem(&package.url) {
            return Err(bad(format!("has url {:?}, which {problem}", package.url)));
        }
    }
    Ok(())
}

/// A download path on the vendor server: starts with a single `/` (so it
/// can never name another server), printable ASCII without `\` or `#`, and
/// no `.` or `..` segments.
fn url_problem(url: &str) -> Option<&'static str> {
    if !url.starts_with('/') {
        return Some("must be a path on the vendor server starting with '/'");
    }
    if url.starts_with("//") {
        return Some("starts with \"//\", which would name another server");
    }
    if url.len() > MAX_URL_BYTES {
        return Some("is longer than 2048 bytes");
    }
    if !url
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#')
    {
        return Some("may only contain printable ASCII without spaces, '\\' or '#'");
    }
    let path = url.split('?').next().unwrap_or(url);
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some("contains a '.' or '..' segment");
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: i64 = 1_750_000_000;

    fn package(name: &str, version: &str) -> DeploymentPackage {
        DeploymentPackage {
            name: name.to_string(),
            version: Version::parse(version).unwrap(),
            size: 1234,
            sha256: "ab".repeat(32),
            url: format!("/packages/{name}/{version}"),
        }
    }

    fn manifest() -> DeploymentManifest {
        DeploymentManifest {
            customer: "acme".to_string(),
            deployment_id: "dep-0001".to_string(),
            issued_at: NOW - 60,
            expires_at: NOW + 3600,
            packages: vec![package("hello", "0.1.0"), package("goods", "1.1.0")],
        }
    }

    fn expect() -> Expectations<'static> {
        Expectations {
            customer: "acme",
            now: NOW,
            max_clock_skew_secs: DEFAULT_MAX_CLOCK_SKEW_SECS,
        }
    }

    /// Signs a manifest as is, skipping the checks `sign` makes.
    fn sign_unchecked(key: &VendorKey, manifest: &DeploymentManifest) -> SignedDeployment {
        key.sign_text(manifest.to_canonical_json())
    }

    fn verify_err(key: &VendorKey, signed: &SignedDeployment) -> DeploymentError {
        signed.verify(&key.public_key(), &expect()).unwrap_err()
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let key = VendorKey::generate();
        let signed = key.sign(&manifest()).unwrap();
        assert_eq!(signed.key_id, key.key_id());
        assert_eq!(signed.manifest, manifest().to_canonical_json());
        assert_eq!(BASE64.decode(&signed.signature).unwrap().len(), 64);

        let public = VendorPublicKey::from_hex(&key.public_hex()).unwrap();
        assert_eq!(signed.verify(&public, &expect()).unwrap(), manifest());

        // The envelope itself survives JSON.
        let wire = serde_json::to_string(&signed).unwrap();
        let back: SignedDeployment = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.verify(&public, &expect()).unwrap(), manifest());
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = VendorKey::generate();
        let again = VendorKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(again.to_hex(), key.to_hex());
        assert_eq!(again.public_hex(), key.public_hex());
        assert_eq!(again.key_id(), key.key_id());
        // Upper case and a trailing newline (as in a key file) are accepted.
        let upper = VendorKey::from_hex(&format!("{}\n", key.to_hex().to_uppercase())).unwrap();
        assert_eq!(upper.to_hex(), key.to_hex());
        let public = VendorPublicKey::from_hex(&key.public_hex()).unwrap();
        assert_eq!(public.to_hex(), key.public_hex());
        assert_eq!(public, key.public_key());
        // A signature made with the re-read key verifies.
        let signed = again.sign(&manifest()).unwrap();
        assert!(signed.verify(&public, &expect()).is_ok());
    }

    #[test]
    fn tampered_text_is_a_bad_signature() {
        let key = VendorKey::generate();
        let signed = key.sign(&manifest()).unwrap();
        // Change one byte: a digit of the expiry time.
        let at = signed.manifest.find(&(NOW + 3600).to_string()).unwrap();
        let mut bytes = signed.manifest.clone().into_bytes();
        bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
        let tampered = SignedDeployment {
            manifest: String::from_utf8(bytes).unwrap(),
            ..signed.clone()
        };
        assert_eq!(verify_err(&key, &tampered), DeploymentError::BadSignature);

        // Even whitespace the parser would ignore breaks the signature.
        let padded = SignedDeployment {
            manifest: format!("{} ", signed.manifest),
            ..signed.clone()
        };
        assert_eq!(verify_err(&key, &padded), DeploymentError::BadSignature);

        // A garbled or truncated signature is refused the same way.
        for signature in ["not base64!", "", &BASE64.encode([0u8; 63])] {
            let garbled = SignedDeployment {
                signature: signature.to_string(),
                ..signed.clone()
            };
            assert_eq!(verify_err(&key, &garbled), DeploymentError::BadSignature);
        }
    }

    #[test]
    fn another_key_is_refused_by_id_first() {
        let vendor = VendorKey::generate();
        let other = VendorKey::generate();
        let signed = other.sign(&manifest()).unwrap();
        let e = verify_err(&vendor, &signed);
        assert_eq!(
            e,
            DeploymentError::WrongKey {
                expected: vendor.key_id(),
                got: other.key_id(),
            }
        );
        let message = e.to_string();
        assert!(message.contains(&other.key_id()), "{message}");
        assert!(message.contains(&vendor.key_id()), "{message}");
        assert!(
            message.contains("vendor.public_key in config.json"),
            "{message}"
        );

        // Claiming the trusted key's id does not help: the signature fails.
        let forged = SignedDeployment {
            key_id: vendor.key_id(),
            ..signed
        };
        assert_eq!(verify_err(&vendor, &forged), DeploymentError::BadSignature);
    }

    #[test]
    fn wrong_customer_is_refused() {
        let key = VendorKey::generate();
        let signed = key.sign(&manifest()).unwrap();
        let e = signed
            .verify(
                &key.public_key(),
                &Expectations {
                    customer: "globex",
                    ..expect()
                },
            )
            .unwrap_err();
        assert_eq!(
            e,
            DeploymentError::WrongCustomer {
                expected: "globex".to_string(),
                got: "acme".to_string(),
            }
        );
        assert!(e.to_string().contains("customer_token"), "{e}");
    }

    #[test]
    fn expired_is_refused() {
        let key = VendorKey::generate();
        let signed = key.sign(&manifest()).unwrap();
        let verify_at = |now| signed.verify(&key.public_key(), &Expectations { now, ..expect() });
        assert!(verify_at(NOW + 3599).is_ok());
        for now in [NOW + 3600, NOW + 100_000] {
            let e = verify_at(now).unwrap_err();
            assert_eq!(
                e,
                DeploymentError::Expired {
                    expires_at: NOW + 3600,
                    now,
                }
            );
            assert!(e.to_string().contains("fresh deployment"), "{e}");
        }
    }

    #[test]
    fn issued_in_the_future_beyond_skew_is_refused() {
        let key = VendorKey::generate();
        let mut m = manifest();
        m.issued_at = NOW + 200;
        let signed = key.sign(&m).unwrap();
        // Within the default five minutes of skew.
        assert!(signed.verify(&key.public_key(), &expect()).is_ok());
        let strict = Expectations {
            max_clock_skew_secs: 60,
            ..expect()
        };
        let e = signed.verify(&key.public_key(), &strict).unwrap_err();
        assert_eq!(
            e,
            DeploymentError::NotYetValid {
                issued_at: NOW + 200,
                now: NOW,
            }
        );
        assert!(e.to_string().contains("clock"), "{e}");
        // Negative skew counts as none.
        let negative = Expectations {
            max_clock_skew_secs: -1000,
            now: NOW + 200,
            ..expect()
        };
        assert!(signed.verify(&key.public_key(), &negative).is_ok());
    }

    #[test]
    fn correctly_signed_garbage_is_malformed() {
        let key = VendorKey::generate();
        let canonical = manifest().to_canonical_json();
        let cases = [
            ("{not json".to_string(), "key must be a string"),
            ("".to_string(), "EOF"),
            (
                canonical.replacen("{", "{\"extra\":1,", 1),
                "unknown field `extra`",
            ),
            (
                canonical.replacen(
                    "\"name\":\"goods\",",
                    "\"name\":\"goods\",\"ref\":\"x\",",
                    1,
                ),
                "packages[1]",
            ),
            (
                canonical.replace("\"version\":\"1.1.0\"", "\"version\":\"1.1\""),
                "packages[1].version",
            ),
            (
                canonical.replace(
                    &format!("\"issued_at\":{}", NOW - 60),
                    "\"issued_at\":\"soon\"",
                ),
                "issued_at",
            ),
            (format!("{canonical}{canonical}"), "trailing characters"),
            (
                canonical.replace("\"deployment_id\":\"dep-0001\"", "\"deployment_id\":\"\""),
                "deployment_id is empty",
            ),
            (
                canonical.replace(
                    &format!("\"expires_at\":{}", NOW + 3600),
                    "\"expires_at\":0",
                ),
                "expires_at (0) is not after issued_at",
            ),
        ];
        for (text, words) in cases {
            let signed = key.sign_text(text.clone());
            let e = verify_err(&key, &signed);
            assert!(
                matches!(&e, DeploymentError::Malformed(m) if m.contains(words)),
                "{text}\n=> {e}"
            );
            assert!(e.to_string().contains(REISSUE), "{e}");
        }
    }

    #[test]
    fn oversized_manifest_is_refused_before_anything_else() {
        let key = VendorKey::generate();
        let signed = SignedDeployment {
            manifest: " ".repeat(MAX_MANIFEST_BYTES + 1),
            signature: String::new(),
            key_id: String::new(),
        };
        assert!(matches!(
            verify_err(&key, &signed),
            DeploymentError::Malformed(m) if m.contains("bytes")
        ));
    }

    #[test]
    fn bad_packages_are_refused() {
        type Edit = fn(&mut DeploymentPackage);
        let cases: &[(Edit, &str)] = &[
            (|p| p.sha256 = "AB".repeat(32), "64 lowercase hex"),
            (|p| p.sha256 = "ab".repeat(31), "64 lowercase hex"),
            (|p| p.sha256 = "zz".repeat(32), "64 lowercase hex"),
            (|p| p.size = 0, "size 0"),
            (
                |p| p.url = "https://evil.example.com/goods.zip".to_string(),
                "starting with '/'",
            ),
            (
                |p| p.url = "packages/goods".to_string(),
                "starting with '/'",
            ),
            (
                |p| p.url = "//evil.example.com/goods".to_string(),
                "another server",
            ),
            (|p| p.url = "/packages/../admin".to_string(), "'..' segment"),
            (|p| p.url = "/packages\\goods".to_string(), "'\\'"),
            (|p| p.url = "/packages/go ods".to_string(), "without spaces"),
            (|p| p.name = "Goods".to_string(), "invalid name"),
            (|p| p.name = "goods--x".to_string(), "invalid name"),
            (|p| p.name = "hello".to_string(), "more than once"),
        ];
        let key = VendorKey::generate();
        for (edit, words) in cases {
            let mut m = manifest();
            edit(&mut m.packages[1]);
            let name = m.packages[1].name.clone();
            // The vendor refuses to sign it...
            let e = key.sign(&m).unwrap_err();
            assert!(
                matches!(&e, DeploymentError::BadPackage { name: n, reason } if *n == name && reason.contains(words)),
                "{words}\n=> {e}"
            );
            // ...and a host refuses it even when it is correctly signed.
            let e = verify_err(&key, &sign_unchecked(&key, &m));
            assert!(
                matches!(&e, DeploymentError::BadPackage { name: n, reason } if *n == name && reason.contains(words)),
                "{words}\n=> {e}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("package {name:?} in the deployment "))
            );
        }
        // A query string is fine.
        let mut m = manifest();
        m.packages[1].url = "/packages/goods/1.1.0?channel=stable".to_string();
        assert!(
            key.sign(&m)
                .unwrap()
                .verify(&key.public_key(), &expect())
                .is_ok()
        );
    }

    #[test]
    fn checks_run_in_order() {
        // Expired, wrong customer and a bad package at once: the customer
        // is reported, as it is checked first.
        let key = VendorKey::generate();
        let mut m = manifest();
        m.customer = "globex".to_string();
        m.expires_at = NOW - 1;
        m.issued_at = NOW - 100;
        m.packages[0].size = 0;
        let signed = sign_unchecked(&key, &m);
        assert!(matches!(
            verify_err(&key, &signed),
            DeploymentError::WrongCustomer { .. }
        ));
        // Signature before parse: tampered garbage is a bad signature.
        let garbage = SignedDeployment {
            manifest: "{not json".to_string(),
            ..signed
        };
        assert_eq!(verify_err(&key, &garbage), DeploymentError::BadSignature);
    }

    #[test]
    fn bad_key_hex_is_refused() {
        let good = VendorKey::generate().public_hex();
        let cases = [
            String::new(),
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}0", "ab".repeat(32)),
            format!("{}zz", &good[..62]),
            format!("0x{}", &good[..62]),
            format!("{} {}", &good[..32], &good[32..]),
        ];
        for text in &cases {
            let e = VendorKey::from_hex(text).unwrap_err();
            assert!(
                matches!(&e, DeploymentError::BadKey(m) if m.contains("64 hex characters") && m.contains("signing key")),
                "{text:?} => {e}"
            );
            let e = VendorPublicKey::from_hex(text).unwrap_err();
            assert!(
                matches!(&e, DeploymentError::BadKey(m) if m.contains("64 hex characters") && m.contains("vendor.public_key in config.json")),
                "{text:?} => {e}"
            );
        }
        // The identity point (y = 1) has small order: anyone could sign for it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let e = VendorPublicKey::from_hex(&hex::encode(identity)).unwrap_err();
        assert!(
            matches!(&e, DeploymentError::BadKey(m) if m.contains("weak")),
            "{e}"
        );
    }

    #[test]
    fn key_id_is_stable_and_short() {
        // RFC 8032 test vector 1.
        let key =
            VendorKey::from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        assert_eq!(
            key.public_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let id = key.key_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let expected = &hex::encode(Sha256::digest(hex::decode(key.public_hex()).unwrap()))[..16];
        assert_eq!(id, expected);
        assert_eq!(key.key_id(), id);
        assert_eq!(
            VendorPublicKey::from_hex(&key.public_hex())
                .unwrap()
                .key_id(),
            id
        );
        assert_ne!(VendorKey::generate().key_id(), id);
    }

    #[test]
    fn canonical_json_is_compact_and_ordered() {
        let m = DeploymentManifest {
            customer: "acme".to_string(),
            deployment_id: "d1".to_string(),
            issued_at: 100,
            expires_at: 200,
            packages: vec![DeploymentPackage {
                name: "goods".to_string(),
                version: Version::new(1, 1, 0),
                size: 42,
                sha256: "0f".repeat(32),
                url: "/packages/goods/1.1.0".to_string(),
            }],
        };
        let expected = format!(
            "{{\"customer\":\"acme\",\"deployment_id\":\"d1\",\"issued_at\":100,\"expires_at\":200,\"packages\":[{{\"name\":\"goods\",\"version\":\"1.1.0\",\"size\":42,\"sha256\":\"{}\",\"url\":\"/packages/goods/1.1.0\"}}]}}",
            "0f".repeat(32)
        );
        assert_eq!(m.to_canonical_json(), expected);
        assert_eq!(m.clone().to_canonical_json(), expected);
        assert!(!expected.contains(char::is_whitespace));
        let back: DeploymentManifest = serde_json::from_str(&expected).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = VendorKey::generate();
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.to_hex()), "{debug}");
        assert!(!debug.contains(&key.to_hex()[..16]), "{debug}");
        assert!(debug.contains(&key.key_id()), "{debug}");
        let debug = format!("{:#?}", key);
        assert!(!debug.contains(&key.to_hex()), "{debug}");
    }

    #[test]
    fn sign_refuses_a_body_no_host_would_accept() {
        let key = VendorKey::generate();
        let mut m = manifest();
        m.expires_at = m.issued_at;
        assert!(
            matches!(key.sign(&m), Err(DeploymentError::Malformed(e)) if e.contains("expires_at"))
        );
        let mut m = manifest();
        m.customer = " ".to_string();
        assert!(
            matches!(key.sign(&m), Err(DeploymentError::Malformed(e)) if e.contains("customer"))
        );
        // No packages at all is a valid (if drastic) deployment.
        let mut m = manifest();
        m.packages.clear();
        assert!(
            key.sign(&m)
                .unwrap()
                .verify(&key.public_key(), &expect())
                .is_ok()
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = DeploymentError::WrongKey {
            expected: "81bc000000000000".to_string(),
            got: "3f9a000000000000".to_string(),
        };
        assert_eq!(
            e.to_string(),
            "the deployment is signed by key 3f9a000000000000 but this host trusts key 81bc000000000000: check vendor.public_key in config.json (the vendor may have rotated its key)"
        );
        let e = DeploymentError::BadPackage {
            name: "goods".to_string(),
            reason: "has size 0; a package archive is never empty".to_string(),
        };
        assert_eq!(
            e.to_string(),
            "package \"goods\" in the deployment has size 0; a package archive is never empty; ask the vendor to issue and sign a corrected deployment"
        );
    }
}
