//! Output formats: JSON (the findings as they are) and SARIF 2.1.0 (for code-scanning UIs).
//! The human format is [`Finding`]'s `Display`.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Serializer;
use serde_json::{json, Value};

use crate::{Finding, FindingKind, Scan, ScanRoot};

/// The schema URI SARIF producers put in `$schema`.
const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub(crate) fn serialize_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// The scan as JSON: `{"files_scanned", "binary_files", "findings": [Finding…], "errors":
/// [message…]}`. A finding's `kind` is `old_permission` or `authorization_url_without_scope`.
pub fn to_json(scan: &Scan) -> Value {
    json!({
        "files_scanned": scan.files_scanned,
        "binary_files": scan.binary_files,
        "findings": scan.findings,
        "errors": scan.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// The scan as a SARIF 2.1.0 log: one run of the tool `scopegate`, one rule per old permission
/// found (`old-permission/<name>`) and `authorization-url-without-scope`, every result at level
/// `error`.
///
/// Each result's `artifactLocation.uri` is relative to its scan root's base directory (the
/// directory given, or the parent of a file given), with `/` separators and percent-encoding,
/// and names that base by `uriBaseId` (`SRCROOT` for a single root, `ROOT1`, `ROOT2`… for
/// several), whose absolute `file://` URI is in `originalUriBaseIds`. Columns count Unicode
/// characters (`columnKind: unicodeCodePoints`). Errors met during the walk are reported as
/// tool execution notifications, and make `executionSuccessful` false.
pub fn to_sarif(scan: &Scan, tool_version: &str) -> Value {
    let base_ids: Vec<String> = if scan.roots.len() == 1 {
        vec!["SRCROOT".to_owned()]
    } else {
        (1..=scan.roots.len()).map(|i| format!("ROOT{i}")).collect()
    };

    // One rule per distinct rule id, in id order; results point at them by index.
    let mut rules: BTreeMap<String, &Finding> = BTreeMap::new();
    for f in &scan.findings {
        rules.entry(f.rule_id()).or_insert(f);
    }
    let rule_index: BTreeMap<&str, usize> = rules
        .keys()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let sarif_rules: Vec<Value> = rules.iter().map(|(id, f)| rule(id, f)).collect();

    let results: Vec<Value> = scan
        .findings
        .iter()
        .map(|f| result(scan, f, &base_ids, &rule_index))
        .collect();

    let mut original_uri_base_ids = serde_json::Map::new();
    for (root, id) in scan.roots.iter().zip(&base_ids) {
        if let Some(abs) = &root.absolute_base {
            original_uri_base_ids.insert(id.clone(), json!({ "uri": file_uri(abs) }));
        }
    }

    let notifications: Vec<Value> = scan
        .errors
        .iter()
        .map(|e| json!({ "level": "error", "message": { "text": e.to_string() } }))
        .collect();

    let mut run = json!({
        "tool": {
            "driver": {
                "name": "scopegate",
                "version": tool_version,
                "rules": sarif_rules,
            }
        },
        "invocations": [{
            "executionSuccessful": scan.errors.is_empty(),
            "toolExecutionNotifications": notifications,
        }],
        "columnKind": "unicodeCodePoints",
        "results": results,
    });
    if !original_uri_base_ids.is_empty() {
        run["originalUriBaseIds"] = Value::Object(original_uri_base_ids);
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    })
}

/// The SARIF `result` for one finding, pointing at its rule by index and at its file relative
/// to its scan root's base.
fn result(
    scan: &Scan,
    f: &Finding,
    base_ids: &[String],
    rule_index: &BTreeMap<&str, usize>,
) -> Value {
    let id = f.rule_id();
    let mut location = json!({ "uri": relative_uri(&scan.roots, &f.path) });
    if let Some(i) = root_of(&scan.roots, &f.path) {
        if scan.roots[i].absolute_base.is_some() {
            location["uriBaseId"] = json!(base_ids[i]);
        }
    }
    json!({
        "ruleId": id,
        "ruleIndex": rule_index.get(id.as_str()).copied().unwrap_or_default(),
        "level": "error",
        "message": { "text": f.message() },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": location,
                "region": {
                    "startLine": f.line,
                    "startColumn": f.char_column,
                    "endColumn": f.char_column + f.text.chars().count(),
                    "snippet": { "text": f.text },
                }
            }
        }],
    })
}

/// The SARIF `reportingDescriptor` for a rule id, described from one of its findings.
fn rule(id: &str, f: &Finding) -> Value {
    let (short, full, help) = match f.kind {
        FindingKind::OldPermission => {
            let name = &f.text;
            let short = format!("Old permission {name}");
            let full = format!(
                "{name} is an old LinkedIn permission: it was retired by the permission \
                 migration and is no longer granted."
            );
            let mut help = if f.replacements.is_empty() {
                format!("Remove {name} from the scope you request.")
            } else {
                format!(
                    "Replace {name} with {} in the scope you request and in your app's \
                     configuration, and have members re-authorize.",
                    f.replacements.join(", ")
                )
            };
            if let Some(note) = &f.note {
                help.push(' ');
                help.push_str(note);
            }
            (short, full, help)
        }
        FindingKind::AuthorizationUrlWithoutScope => (
            "Authorization request without scope".to_owned(),
            "An authorization URL has no scope parameter: it relies on default scopes, which \
             are sunset."
                .to_owned(),
            "Add a scope parameter to the authorization request that lists, explicitly, the \
             permissions the app needs."
                .to_owned(),
        ),
    };
    json!({
        "id": id,
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": help },
        "defaultConfiguration": { "level": "error" },
    })
}

/// The index of the root `path` was found under: the longest root path it starts with.
fn root_of(roots: &[ScanRoot], path: &Path) -> Option<usize> {
    roots
        .iter()
        .enumerate()
        .filter(|(_, r)| path.starts_with(&r.path))
        .max_by_key(|(_, r)| r.path.components().count())
        .map(|(i, _)| i)
}

/// `path` relative to its root's base, as a percent-encoded URI reference with `/` separators.
fn relative_uri(roots: &[ScanRoot], path: &Path) -> String {
    let relative = root_of(roots, path)
        .and_then(|i| path.strip_prefix(&roots[i].base).ok())
        .unwrap_or(path);
    let mut uri = String::new();
    for component in relative.components() {
        let part = match component {
            Component::Normal(s) => s.as_encoded_bytes(),
            Component::ParentDir => b"..",
            Component::RootDir => {
                uri.push('/');
                continue;
            }
            Component::CurDir | Component::Prefix(_) => continue,
        };
        if !uri.is_empty() && !uri.ends_with('/') {
            uri.push('/');
        }
        percent_encode(part, &mut uri);
    }
    uri
}

/// `file://` URI of an absolute directory, ending in `/` as SARIF requires of base URIs.
fn file_uri(dir: &Path) -> String {
    let mut uri = "file://".to_owned();
    for component in dir.components() {
        if let Component::Normal(s) = component {
            uri.push('/');
            percent_encode(s.as_encoded_bytes(), &mut uri);
        }
    }
    uri.push('/');
    uri
}

/// Appends `bytes`, keeping RFC 3986 unreserved characters and percent-encoding the rest.
fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn root(path: &str, base: &str) -> ScanRoot {
        ScanRoot {
            path: PathBuf::from(path),
            base: PathBuf::from(base),
            absolute_base: None,
        }
    }

    #[test]
    fn uris_are_relative_to_the_root_and_encoded() {
        let roots = [root("./proj", "./proj"), root("lib/x.rs", "lib")];
        assert_eq!(
            relative_uri(&roots, Path::new("./proj/src/a b/ü.rs")),
            "src/a%20b/%C3%BC.rs"
        );
        assert_eq!(relative_uri(&roots, Path::new("lib/x.rs")), "x.rs");
        assert_eq!(
            file_uri(Path::new("/home/me/my proj")),
            "file:///home/me/my%20proj/"
        );
    }
}
