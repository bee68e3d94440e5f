//! The `scopegate migrate scan` engine: finds, in a source tree, what LinkedIn's permission
//! migrations (seed 003) and the end of default scopes (seed 002) ask developers to change.
//!
//! Two kinds of finding:
//!
//! - **Old permissions** ([`FindingKind::OldPermission`]): each [`Rule`] names an old permission
//!   and what replaces it. A name counts only on identifier boundaries: the bytes before and
//!   after it must not be `[A-Za-z0-9_]`, so `r_ads` is not found in `r_ads_reporting`, nor
//!   `w_share` in `w_shared` or `my_w_share`. One exception: a percent escape right before a
//!   name (`scope=r_liteprofile%20w_share`) separates it, as in a URL-encoded scope list.
//!   Strings, comments, YAML, JSON and `.env` files all count: the scan does not parse any
//!   language.
//! - **Authorization URLs without a scope** ([`FindingKind::AuthorizationUrlWithoutScope`]): a
//!   URL containing `/oauth/v2/authorization?` or `/oauth/native-pkce/authorization?` whose
//!   query (up to whitespace, a quote, a backtick, `<`, `>` or `)`) has no `scope=` parameter.
//!   Default scopes are sunset, so such a request grants nothing useful. A query written as a
//!   string literal that ends in `?`, `&` or `=` is taken to be continued by concatenation, and
//!   then a `scope=` later on the same line counts.
//!
//! Which files: every file under the given paths, walked by the `ignore` crate exactly as
//! ripgrep walks them by default: `.gitignore` (inside a git repository), `.ignore`,
//! `.git/info/exclude` and the global git excludes are honoured, hidden files and directories
//! are skipped (except dotenv files: `.env`, `.env.*`), symbolic links are not followed. A path
//! given explicitly is always scanned. A file with a NUL byte in its first 8 KiB is binary and
//! skipped.
//!
//! Positions: `line` is 1-based (lines end at `\n`, so CRLF files count the same);
//! `column` is 1-based and counts **bytes** from the start of the line, as `rg --column` does;
//! `char_column` counts Unicode scalar values instead (what an editor shows, and what the SARIF
//! output uses). A UTF-8 byte-order mark at the start of a file is not counted.

mod matcher;
mod report;
mod walk;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use report::{to_json, to_sarif};

/// An old permission to look for, with what replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The old permission's name, e.g. `w_share` (ASCII letters, digits and underscores).
    pub name: String,
    /// The permissions that replace it, in the order to show them.
    pub replacements: Vec<String>,
    /// Anything else a developer must know, e.g. a replacement not to request.
    pub note: Option<String>,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An old permission's name.
    OldPermission,
    /// An authorization URL whose query has no `scope` parameter.
    AuthorizationUrlWithoutScope,
}

/// One place in one file that needs changing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file, as the walk reached it (starting with the path that was given).
    #[serde(serialize_with = "report::serialize_path")]
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column in bytes from the start of the line (as `rg --column`).
    pub column: usize,
    /// 1-based column in Unicode scalar values (characters) from the start of the line.
    pub char_column: usize,
    /// What was found.
    pub kind: FindingKind,
    /// The text found: the permission's name, or the whole URL.
    pub text: String,
    /// For an old permission, what replaces it; empty otherwise.
    pub replacements: Vec<String>,
    /// For an old permission, its rule's note.
    pub note: Option<String>,
}

impl Finding {
    /// The SARIF rule id: `old-permission/<name>` or `authorization-url-without-scope`.
    pub fn rule_id(&self) -> String {
        match self.kind {
            FindingKind::OldPermission => format!("old-permission/{}", self.text),
            FindingKind::AuthorizationUrlWithoutScope => {
                "authorization-url-without-scope".to_owned()
            }
        }
    }

    /// The message alone, without the location: `old permission X: use A, B (note)`.
    pub fn message(&self) -> String {
        match self.kind {
            FindingKind::OldPermission => {
                let mut m = format!("old permission {}", self.text);
                if !self.replacements.is_empty() {
                    m.push_str(": use ");
                    m.push_str(&self.replacements.join(", "));
                }
                if let Some(note) = &self.note {
                    m.push_str(" (");
                    m.push_str(note);
                    m.push(')');
                }
                m
            }
            FindingKind::AuthorizationUrlWithoutScope => format!(
                "authorization request without scope: default scopes are sunset, request the \
                 permissions explicitly with a scope parameter: {}",
                self.text
            ),
        }
    }
}

/// `path:line:column: message`, one line, as compilers and ripgrep print locations.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message()
        )
    }
}

/// One path the scan was asked to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRoot {
    /// The path as given.
    pub path: PathBuf,
    /// The directory that findings' SARIF URIs are relative to: `path` itself for a directory,
    /// its parent for a file.
    pub base: PathBuf,
    /// `base` as an absolute, canonical path, when it could be resolved.
    pub absolute_base: Option<PathBuf>,
}

/// The outcome of a scan.
#[derive(Debug, Default)]
pub struct Scan {
    /// The paths that were scanned, in the order given.
    pub roots: Vec<ScanRoot>,
    /// Every finding, sorted by path, line, column and kind; no duplicates.
    pub findings: Vec<Finding>,
    /// How many files were read and searched (binary files not included).
    pub files_scanned: u64,
    /// How many files were skipped as binary.
    pub binary_files: u64,
    /// What could not be read (unreadable files or directories, bad ignore files), sorted by
    /// message. The rest of the tree was scanned: a caller that gates on the scan should fail
    /// when this is not empty, since a file it could not read may hold an old permission.
    pub errors: Vec<ScanError>,
}

/// Why a scan could not start, or a part of the tree that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No path was given.
    #[error("no path to scan")]
    NoPaths,
    /// A rule cannot be searched for.
    #[error("invalid rule {name:?}: {reason}")]
    InvalidRule {
        /// The rule's name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The search automaton could not be built (too many or too long names).
    #[error("cannot build the matcher: {0}")]
    Matcher(String),
    /// A path that was given, or a file found under it, could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The walk reported an error (an unreadable directory, a bad ignore file, a loop).
    #[error("{0}")]
    Walk(#[from] ignore::Error),
}

/// Scans `paths` (files or directories) for the rules' old permissions and for authorization
/// URLs without a scope, on all cores.
///
/// Fails before scanning when no path is given, a given path does not exist or a rule is
/// invalid (empty, not an identifier, listed twice). Errors met during the walk do not stop it:
/// they are returned in [`Scan::errors`].
pub fn scan(paths: &[PathBuf], rules: &[Rule]) -> Result<Scan, ScanError> {
    if paths.is_empty() {
        return Err(ScanError::NoPaths);
    }
    let matcher = matcher::Matcher::new(rules)?;
    let roots = paths
        .iter()
        .map(|p| scan_root(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut scan = walk::run(paths, rules, &matcher);
    scan.roots = roots;
    Ok(scan)
}

fn scan_root(path: &Path) -> Result<ScanRoot, ScanError> {
    let meta = std::fs::metadata(path).map_err(|source| ScanError::Io {
        path: path.to_owned(),
        source,
    })?;
    let base = if meta.is_dir() {
        path.to_owned()
    } else {
        path.parent().map(Path::to_owned).unwrap_or_default()
    };
    let absolute_base = if base.as_os_str().is_empty() {
        std::fs::canonicalize(".").ok()
    } else {
        std::fs::canonicalize(&base).ok()
    };
    Ok(ScanRoot {
        path: path.to_owned(),
        base,
        absolute_base,
    })
}
