//! Plugin files as the manifest declares them: the file-name rule every
//! plugin file obeys, the per-plugin quota (`capabilities.files_quota_mb`)
//! and `[[uploads]]`, routes whose request body the host streams into a
//! file instead of handing it to the guest.
//!
//! The name rule lives here, once, because both the manifest (an upload's
//! `file` template) and the host's file store check names with it.

use serde::{Deserialize, Serialize};

use crate::manifest::ManifestError;

/// The quota a plugin gets when its manifest names none.
pub const DEFAULT_FILES_QUOTA_MB: u32 = 100;
/// The largest quota a manifest may ask for.
pub const MAX_FILES_QUOTA_MB: u32 = 100 * 1024;
/// The largest single upload a manifest may declare.
pub const MAX_UPLOAD_MB: u32 = 1024;
/// The folder whose files the host serves at `/files/<plugin>/…`.
pub const PUBLIC_FOLDER: &str = "public";

const MAX_NAME_BYTES: usize = 512;
const MAX_COMPONENT_BYTES: usize = 128;

/// `None` when `name` is a valid plugin file name, else what is wrong with
/// it, to follow "it". A name is relative, `/`-separated, each part
/// non-empty, not `.` or `..`, not starting with `.` (the store keeps its
/// temporary files under such names), without NUL, backslash or control
/// characters, at most 128 bytes a part and 512 in all.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("is longer than 512 bytes");
    }
    if name.starts_with('/') {
        return Some("is absolute; file names are relative to the plugin's folder");
    }
    if name.contains('\\') {
        return Some("contains a backslash; separate folders with '/'");
    }
    if name.bytes().any(|b| b == 0 || b.is_ascii_control()) {
        return Some("contains NUL or a control character");
    }
    for part in name.split('/') {
        if part == ".." {
            return Some("contains \"..\"; names may not leave the plugin's folder");
        }
        if part.is_empty() || part == "." {
            return Some("has an empty or \".\" part (\"//\", \"./\" or a trailing '/')");
        }
        if part.starts_with('.') {
            return Some("has a part starting with '.'; hidden names are reserved for the host");
        }
        if part.len() > MAX_COMPONENT_BYTES {
            return Some("has a part longer than 128 bytes");
        }
    }
    None
}

/// The placeholder of a `file` template filled with the file name a
/// `multipart/form-data` file part carries; it may not name a path segment.
pub const FILENAME_PLACEHOLDER: &str = "filename";

/// A route whose body the host stores as a file before it calls the plugin.
///
/// For a request matching `method` and `path` (below the plugin's mount
/// point; `{x}` matches one path segment), the host streams the body into
/// `file` (with the `{x}` placeholders filled from the path), at most
/// `max_mb`, within the plugin's quota, and then calls the plugin on the
/// same route with the JSON body `{"stored": {"file", "size",
/// "content_type"}}` instead of the upload. A `multipart/form-data` body
/// has its one file part stored that way (its other fields, small, go to
/// the plugin as `"fields"`), and `{filename}` in `file` stands for the
/// part's file name, checked by the same name rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    pub path: String,
    pub file: String,
    #[serde(default = "default_upload_method")]
    pub method: String,
    #[serde(default = "default_upload_mb")]
    pub max_mb: u32,
}

fn default_upload_method() -> String {
    "PUT".to_owned()
}

fn default_upload_mb() -> u32 {
    16
}

impl Upload {
    /// The placeholder values when `path` (below the mount point, starting
    /// with '/') matches this upload's path, in the order they appear.
    pub fn matches<'a>(&self, path: &'a str) -> Option<Vec<(&str, &'a str)>> {
        let pattern: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        let actual: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if pattern.len() != actual.len() {
            return None;
        }
        let mut captured = Vec::new();
        for (p, a) in pattern.iter().zip(&actual) {
            match placeholder(p) {
                Some(key) if !a.is_empty() => captured.push((key, *a)),
                Some(_) => return None,
                None if p == a => {}
                None => return None,
            }
        }
        Some(captured)
    }

    /// Whether `file` names the stored file after the multipart part's
    /// file name, so only a multipart body can fill it.
    pub fn wants_file_name(&self) -> bool {
        self.file.contains(&format!("{{{FILENAME_PLACEHOLDER}}}"))
    }

    /// The file name for `captured` placeholder values.
    pub fn file_for(&self, captured: &[(&str, &str)]) -> String {
        let mut file = self.file.clone();
        for (key, value) in captured {
            file = file.replace(&format!("{{{key}}}"), value);
        }
        file
    }
}

fn placeholder(segment: &str) -> Option<&str> {
    let key = segment.strip_prefix('{')?.strip_suffix('}')?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(key)
}

/// Checks `capabilities.files_quota_mb`.
pub fn validate_quota(quota_mb: u32) -> Result<(), ManifestError> {
    if !(1..=MAX_FILES_QUOTA_MB).contains(&quota_mb) {
        return Err(invalid(
            "capabilities.files_quota_mb",
            format!("{quota_mb} is out of range: expected 1 to {MAX_FILES_QUOTA_MB} (MiB)"),
        ));
    }
    Ok(())
}

/// Checks `[[uploads]]`: each path well formed and unique per method, each
/// file template a valid file name that uses only the path's placeholders.
pub fn validate_uploads(uploads: &[Upload]) -> Result<(), ManifestError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, upload) in uploads.iter().enumerate() {
        let field = |f: &str| format!("uploads[{i}].{f}");
        if !matches!(upload.method.as_str(), "PUT" | "POST") {
            return Err(invalid(
                field("method"),
                format!("{:?} is not PUT or POST", upload.method),
            ));
        }
        if !upload.path.starts_with('/') || upload.path.contains("//") {
            return Err(invalid(
                field("path"),
                format!(
                    "{:?} must start with '/' and have no empty segment (e.g. \"/api/items/{{id}}/image\")",
                    upload.path
                ),
            ));
        }
        let mut keys = Vec::new();
        for segment in upload.path.trim_start_matches('/').split('/') {
            if segment.contains(['{', '}']) {
                match placeholder(segment) {
                    Some(key) => keys.push(key),
                    None => {
                        return Err(invalid(
                            field("path"),
                            format!(
                                "{segment:?} is not a placeholder: write a whole segment as {{name}} with lowercase letters and '_'"
                            ),
                        ));
                    }
                }
            }
        }
        if !seen.insert((upload.method.as_str(), upload.path.as_str())) {
            return Err(invalid(
                field("path"),
                format!(
                    "{} {:?} is declared more than once",
                    upload.method, upload.path
                ),
            ));
        }
        if keys.contains(&FILENAME_PLACEHOLDER) {
            return Err(invalid(
                field("path"),
                format!(
                    "{{{FILENAME_PLACEHOLDER}}} is reserved for the multipart file part's name; give the path segment another name"
                ),
            ));
        }
        let mut template = upload.file.clone();
        for key in keys.iter().chain([&FILENAME_PLACEHOLDER]) {
            template = template.replace(&format!("{{{key}}}"), "x");
        }
        if template.contains(['{', '}']) {
            return Err(invalid(
                field("file"),
                format!(
                    "{:?} uses a placeholder that uploads[{i}].path does not have",
                    upload.file
                ),
            ));
        }
        if let Some(problem) = file_name_problem(&template) {
            return Err(invalid(
                field("file"),
                format!("{:?} is not a valid file name: it {problem}", upload.file),
            ));
        }
        if !(1..=MAX_UPLOAD_MB).contains(&upload.max_mb) {
            return Err(invalid(
                field("max_mb"),
                format!(
                    "{} is out of range: expected 1 to {MAX_UPLOAD_MB}",
                    upload.max_mb
                ),
            ));
        }
    }
    Ok(())
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "a\0b",
            "a//b",
            "./a",
            "a/",
            ".hidden",
        ] {
            assert!(file_name_problem(bad).is_some(), "{bad:?} was accepted");
        }
        for good in ["a.png", "public/items/7/image.png", "x..y"] {
            assert_eq!(file_name_problem(good), None, "{good:?}");
        }
    }

    #[test]
    fn an_upload_path_fills_its_file_template() {
        let upload = Upload {
            path: "/api/items/{id}/image".into(),
            file: "public/items/{id}.img".into(),
            method: "PUT".into(),
            max_mb: 4,
        };
        validate_uploads(std::slice::from_ref(&upload)).unwrap();
        let captured = upload.matches("/api/items/42/image").unwrap();
        assert_eq!(upload.file_for(&captured), "public/items/42.img");
        assert!(upload.matches("/api/items/42").is_none());
        assert!(upload.matches("/api/items//image").is_none());
    }

    #[test]
    fn a_template_with_an_unknown_placeholder_is_refused_with_its_field() {
        let upload = Upload {
            path: "/api/items/{id}/image".into(),
            file: "public/{sku}.img".into(),
            method: "PUT".into(),
            max_mb: 4,
        };
        let e = validate_uploads(&[upload]).unwrap_err();
        assert_eq!(e.field(), "uploads[0].file");
    }

    #[test]
    fn the_multipart_file_name_fills_its_placeholder_only_in_the_file() {
        let upload = Upload {
            path: "/api/items/{id}/images".into(),
            file: "public/items/{id}/{filename}".into(),
            method: "POST".into(),
            max_mb: 4,
        };
        validate_uploads(std::slice::from_ref(&upload)).unwrap();
        assert!(upload.wants_file_name());
        let mut captured = upload.matches("/api/items/7/images").unwrap();
        captured.push((FILENAME_PLACEHOLDER, "front.png"));
        assert_eq!(upload.file_for(&captured), "public/items/7/front.png");
        let reserved = Upload {
            path: "/api/{filename}".into(),
            file: "{filename}".into(),
            method: "POST".into(),
            max_mb: 4,
        };
        let e = validate_uploads(&[reserved]).unwrap_err();
        assert_eq!(e.field(), "uploads[0].path");
    }
}
