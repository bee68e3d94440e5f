//! The parallel walk: one worker per thread, each with its own read buffer and findings, merged
//! when the walk ends.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ignore::{DirEntry, WalkBuilder, WalkState};

use crate::matcher::{Hit, HitKind, Matcher};
use crate::{Finding, FindingKind, Rule, Scan, ScanError};

/// A file with a NUL byte in this many first bytes is binary (git's heuristic).
const BINARY_WINDOW: usize = 8 * 1024;
/// The read buffer's first size; it grows for larger files and is reused.
const INITIAL_BUFFER: usize = 64 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Walks `paths` with ripgrep's default rules and searches every file.
pub(crate) fn run(paths: &[PathBuf], rules: &[Rule], matcher: &Matcher) -> Scan {
    let mut builder = WalkBuilder::new(&paths[0]);
    for path in &paths[1..] {
        builder.add(path);
    }
    // The defaults are ripgrep's: .gitignore (in a git repository), .ignore, git excludes and
    // parent directories' ignore files honoured, links not followed, one thread per core (at
    // most 12). Hidden entries are skipped as ripgrep skips them, except dotenv files.
    builder.hidden(false).filter_entry(|entry| {
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        !hidden || is_dotenv_file(entry)
    });
    let shared = Shared {
        rules,
        matcher,
        out: Mutex::new(Scan::default()),
    };
    builder.build_parallel().run(|| {
        let mut worker = Worker {
            shared: &shared,
            buf: Vec::new(),
            out: Scan::default(),
        };
        Box::new(move |entry| worker.visit(entry))
    });
    let mut scan = shared
        .out
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    scan.findings.sort_by(|a, b| {
        (&a.path, a.line, a.column, a.kind).cmp(&(&b.path, b.line, b.column, b.kind))
    });
    // Overlapping roots (`scan a a/b`) walk some files twice.
    scan.findings.dedup();
    scan.errors
        .sort_by_cached_key(std::string::ToString::to_string);
    scan
}

/// `.env`, `.env.local`, `.env.production`…: hidden, but where OAuth settings live, so scanned
/// (still subject to ignore files). A directory named `.env` (a virtualenv) stays skipped.
fn is_dotenv_file(entry: &DirEntry) -> bool {
    let name = entry.file_name().as_encoded_bytes();
    (name == b".env" || name.starts_with(b".env."))
        && entry.file_type().is_some_and(|t| t.is_file())
}

struct Shared<'a> {
    rules: &'a [Rule],
    matcher: &'a Matcher,
    out: Mutex<Scan>,
}

struct Worker<'a> {
    shared: &'a Shared<'a>,
    /// Reused for every file this thread reads; its length is its usable size.
    buf: Vec<u8>,
    out: Scan,
}

impl Drop for Worker<'_> {
    /// Hands this thread's results over when the walk drops the worker at its end.
    fn drop(&mut self) {
        let mut out = self
            .shared
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        out.findings.append(&mut self.out.findings);
        out.errors.append(&mut self.out.errors);
        out.files_scanned += self.out.files_scanned;
        out.binary_files += self.out.binary_files;
    }
}

impl Worker<'_> {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                self.out.errors.push(ScanError::Walk(e));
                return WalkState::Continue;
            }
        };
        // A directory whose ignore files could not be parsed carries the error; the walk goes
        // on with the rules that could be read (as ripgrep does).
        if let Some(e) = entry.error() {
            self.out.errors.push(ScanError::Walk(e.clone()));
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        let path = entry.path();
        match read_text(path, &mut self.buf) {
            Ok(Some(len)) => {
                self.out.files_scanned += 1;
                self.search(path, len);
            }
            Ok(None) => self.out.binary_files += 1,
            Err(source) => self.out.errors.push(ScanError::Io {
                path: path.to_owned(),
                source,
            }),
        }
        WalkState::Continue
    }

    fn search(&mut self, path: &Path, len: usize) {
        let text = &self.buf[..len];
        let Shared { rules, matcher, .. } = self.shared;
        let findings = &mut self.out.findings;
        let mut lines = LineCursor::new(text);
        matcher.old_permissions(text, |hit| {
            findings.push(finding(path, &mut lines, rules, hit))
        });
        let mut lines = LineCursor::new(text);
        matcher.urls_without_scope(text, |hit| {
            findings.push(finding(path, &mut lines, rules, hit));
        });
    }
}

fn finding(path: &Path, lines: &mut LineCursor<'_>, rules: &[Rule], hit: Hit) -> Finding {
    let (line, column, char_column) = lines.locate(hit.start);
    let text = String::from_utf8_lossy(&lines.text[hit.start..hit.end]).into_owned();
    let (kind, replacements, note) = match hit.what {
        HitKind::Rule(i) => (
            FindingKind::OldPermission,
            rules[i].replacements.clone(),
            rules[i].note.clone(),
        ),
        HitKind::UrlWithoutScope => (FindingKind::AuthorizationUrlWithoutScope, vec![], None),
    };
    Finding {
        path: path.to_owned(),
        line,
        column,
        char_column,
        kind,
        text,
        replacements,
        note,
    }
}

/// Reads the file at `path` into `buf` (growing it when needed) and returns its length, or
/// `None` when it is binary: a NUL in its first [`BINARY_WINDOW`] bytes. A binary file is not
/// read past the read that revealed it.
fn read_text(path: &Path, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut file = File::open(path)?;
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            let grown = (buf.len() * 2).max(INITIAL_BUFFER);
            buf.resize(grown, 0);
        }
        let n = match file.read(&mut buf[filled..]) {
            Ok(0) => return Ok(Some(filled)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if filled < BINARY_WINDOW {
            let window = &buf[filled..(filled + n).min(BINARY_WINDOW)];
            if memchr::memchr(0, window).is_some() {
                return Ok(None);
            }
        }
        filled += n;
    }
}

/// Turns byte offsets, asked for in increasing order, into line and column numbers, counting
/// newlines only once over the whole file.
struct LineCursor<'a> {
    text: &'a [u8],
    /// Where the last lookup stopped.
    pos: usize,
    /// The 1-based line that `pos` is on, and where that line starts.
    line: usize,
    line_start: usize,
}

impl<'a> LineCursor<'a> {
    fn new(text: &'a [u8]) -> Self {
        let start = if text.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        LineCursor {
            text,
            pos: start,
            line: 1,
            line_start: start,
        }
    }

    /// `(line, byte column, char column)` of `at`, all 1-based. `at` must not go backwards.
    fn locate(&mut self, at: usize) -> (usize, usize, usize) {
        let at = at.max(self.pos);
        let seg = &self.text[self.pos..at];
        if let Some(last) = memchr::memrchr(b'\n', seg) {
            self.line += memchr::memchr_iter(b'\n', seg).count();
            self.line_start = self.pos + last + 1;
        }
        self.pos = at;
        let prefix = &self.text[self.line_start..at];
        // Every byte but UTF-8 continuation bytes (0b10xx_xxxx) starts a character.
        let chars = prefix.iter().filter(|&&b| b & 0xC0 != 0x80).count();
        (self.line, at - self.line_start + 1, chars + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_cursor_counts_lines_bytes_and_chars() {
        let text = "\u{feff}ab\r\ncafé x\n\nz".as_bytes();
        let mut c = LineCursor::new(text);
        assert_eq!(c.locate(3), (1, 1, 1)); // 'a' after the BOM
        let x = text.iter().position(|&b| b == b'x').unwrap();
        assert_eq!(c.locate(x), (2, 7, 6));
        assert_eq!(c.locate(text.len() - 1), (4, 1, 1));
    }
}
