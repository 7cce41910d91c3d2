//! The results file: one JSON line per ended task, appended whole, and
//! compacted so that each task keeps exactly one line.
//!
//! Three rules keep it safe to leave a batch running unattended:
//!
//! * **Nothing foreign is touched.** [`ResultsFile::open`] reads every line
//!   before writing any. A line that is not an rlm result (another
//!   program's JSON, a task line, text) refuses the file
//!   ([`ResultsError::Foreign`]); the only line ever dropped is a torn
//!   *last* line that is the start of a result, left by a kill mid-write.
//! * **Lines are whole.** Each result goes out in one `write` to a file
//!   opened for appending, so a kill leaves whole lines and at most one
//!   torn last line.
//! * **One line per task.** A task that runs again (resumed, retried)
//!   appends a line that supersedes its old one. [`ResultsFile::compact`]
//!   rewrites the file with the latest line of each id, atomically: a
//!   temporary file beside it, fsync, rename over it, fsync the directory.
//!   A batch compacts when it starts and when it ends, so merging shards is
//!   `cat`.
//!
//! While open, the file holds an exclusive advisory lock, so a second batch
//! pointed at the same file is refused instead of interleaving with it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One task's result, as a line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResultLine {
    pub id: String,
    pub answer: Option<serde_json::Value>,
    /// A [`RunStatus`](crate::driver::RunStatus) in snake_case, or `error`
    /// when the task could not start (e.g. its context is missing).
    pub status: String,
    pub answer_kind: Option<String>,
    pub iterations: usize,
    /// Usage per model for this task.
    pub usage: serde_json::Value,
    /// Dollars spent, or `None` (JSON `null`) when a model that was used has
    /// no known price: unknown is not zero.
    pub cost_usd: Option<f64>,
    pub wall_s: f64,
    pub error: Option<String>,
    /// Set when the task's trace (`--trace-dir`) could not be fully written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_error: Option<String>,
}

/// Why a results file cannot be used. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    // The OS error is in the message, so it is not also a `source`: a
    // chain printed whole (`{:#}`) would say it twice.
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{path}:{line} is not an rlm result line, so this is not a results file (or it was edited); nothing was written to it. Point --out at a new file, or remove that line. The line starts: {start}")]
    Foreign {
        path: String,
        line: usize,
        start: String,
    },
    #[error("{path} is a directory; --out names the results file")]
    Directory { path: String },
    #[error("{path} is already in use by another rlm batch (it holds the lock): two batches appending to one file would interleave; wait for it, or use another --out")]
    Locked { path: String },
}

/// What [`ResultsFile::open`] found in the file.
#[derive(Debug, Default)]
pub struct Existing {
    /// The latest result of each id.
    pub results: HashMap<String, ResultLine>,
    /// Bytes of a torn last line that was dropped (a kill mid-write).
    pub torn_bytes: Option<usize>,
    /// Lines removed by compaction: superseded results and blank lines.
    pub compacted: usize,
}

/// A results file open for appending. See the module docs.
pub struct ResultsFile {
    /// The file written: a symlink's target, so compaction replaces the
    /// file and leaves the link.
    target: PathBuf,
    /// The path as the user gave it, for messages.
    path: PathBuf,
    file: Mutex<File>,
    /// A regular file is read back, compacted and locked; a device or a
    /// pipe (`/dev/stdout`, a FIFO) is only appended to.
    regular: bool,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError + '_ {
    move |cause| ResultsError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// The lines of a results file, parsed.
struct Parsed {
    /// Every result in file order, superseded ones included.
    lines: Vec<ResultLine>,
    blank: usize,
    torn: Option<usize>,
}

/// Parses a results file's bytes, or names its first foreign line.
fn parse(bytes: &[u8], path: &Path) -> Result<Parsed, ResultsError> {
    let mut parsed = Parsed {
        lines: Vec::new(),
        blank: 0,
        torn: None,
    };
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let whole = line.ends_with(b"\n");
        match serde_json::from_slice::<ResultLine>(line) {
            Ok(r) if whole => parsed.lines.push(r),
            Err(_) if whole && line.trim_ascii().is_empty() => parsed.blank += 1,
            // Only the last line can be torn, and only a result's beginning
            // is taken for one: every line rlm writes starts with its id.
            Err(e) if !whole && e.is_eof() && line.starts_with(b"{\"id\":") => {
                parsed.torn = Some(line.len());
                break;
            }
            _ if !whole && line.trim_ascii().is_empty() => parsed.blank += 1,
            _ => {
                let text = String::from_utf8_lossy(line);
                let start: String = text.trim_end().chars().take(80).collect();
                return Err(ResultsError::Foreign {
                    path: path.display().to_string(),
                    line: n + 1,
                    start: format!("{start:?}"),
                });
            }
        }
    }
    Ok(parsed)
}

/// The latest line of each id, in the order ids first appear.
fn latest(lines: Vec<ResultLine>) -> Vec<ResultLine> {
    let mut order: Vec<ResultLine> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for r in lines {
        match at.get(&r.id) {
            Some(&i) => order[i] = r,
            None => {
                at.insert(r.id.clone(), order.len());
                order.push(r);
            }
        }
    }
    order
}

impl ResultsFile {
    /// Opens (creating if needed) the results file, refusing one that holds
    /// anything but rlm results, and compacts it to one line per id.
    ///
    /// Only a regular file is read back. A device or a pipe (`/dev/stdout`,
    /// `/dev/full`, a FIFO) is opened for appending alone: reading one could
    /// block forever or, like `/dev/zero` and `/dev/full`, never end.
    pub fn open(path: &Path) -> Result<(ResultsFile, Existing), ResultsError> {
        let meta = std::fs::metadata(path).ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(ResultsError::Directory {
                path: path.display().to_string(),
            });
        }
        let regular = meta.as_ref().is_none_or(|m| m.is_file());
        // Compaction renames over the file; through a symlink it must
        // replace the target, not the link.
        let target = match &meta {
            Some(_) => std::fs::canonicalize(path).map_err(io_error(path))?,
            None => path.to_path_buf(),
        };
        let mut file = OpenOptions::new()
            .read(regular)
            .append(true)
            .create(true)
            .open(&target)
            .map_err(io_error(path))?;
        let mut existing = Existing::default();
        let mut kept = Vec::new();
        if regular {
            lock(&file, path)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error(path))?;
            let parsed = parse(&bytes, path)?;
            let total = parsed.lines.len() + parsed.blank;
            kept = latest(parsed.lines);
            existing.torn_bytes = parsed.torn;
            existing.compacted = total - kept.len();
        }
        let results = ResultsFile {
            target,
            path: path.to_path_buf(),
            file: Mutex::new(file),
            regular,
        };
        if existing.compacted > 0 || existing.torn_bytes.is_some() {
            results.rewrite(&kept).map_err(io_error(path))?;
        }
        existing.results = kept.into_iter().map(|r| (r.id.clone(), r)).collect();
        Ok((results, existing))
    }

    /// Appends one result.
    pub fn append(&self, result: &ResultLine) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(result).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // After a compaction the handle is not in append mode; the lock
        // makes this process the only writer, so the end stays the end.
        file.seek(SeekFrom::End(0))?;
        file.write_all(&line)?;
        file.flush()
    }

    /// The latest result of each id, read back from the file (empty for a
    /// file that is not regular, which cannot be read back).
    pub fn results(&self) -> Result<HashMap<String, ResultLine>, ResultsError> {
        if !self.regular {
            return Ok(HashMap::new());
        }
        let bytes = std::fs::read(&self.target).map_err(io_error(&self.path))?;
        let lines = parse(&bytes, &self.path)?.lines;
        Ok(latest(lines)
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect())
    }

    /// Rewrites the file with the latest line of each id, if any line is
    /// superseded; returns how many lines it removed. A file that is not
    /// regular is left as it is.
    pub fn compact(&self) -> Result<usize, ResultsError> {
        if !self.regular {
            return Ok(0);
        }
        let path = &self.path;
        let bytes = std::fs::read(&self.target).map_err(io_error(path))?;
        let parsed = parse(&bytes, path)?;
        let total = parsed.lines.len() + parsed.blank;
        let kept = latest(parsed.lines);
        let removed = total - kept.len();
        if removed > 0 || parsed.torn.is_some() {
            self.rewrite(&kept).map_err(io_error(path))?;
        }
        Ok(removed)
    }

    /// Replaces the file with `lines`, atomically: whatever happens, the
    /// path holds either the old file or the whole new one.
    fn rewrite(&self, lines: &[ResultLine]) -> std::io::Result<()> {
        let dir = match self.target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".rlm-results-")
            .suffix(".tmp")
            .tempfile_in(&dir)?;
        let mut body = Vec::new();
        for r in lines {
            serde_json::to_writer(&mut body, r).map_err(std::io::Error::other)?;
            body.push(b'\n');
        }
        temp.write_all(&body)?;
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(meta) = file.metadata() {
            // The new file keeps the old one's permissions.
            let _ = temp.as_file().set_permissions(meta.permissions());
        }
        temp.as_file().sync_all()?;
        // The lock moves to the new file before it takes the name, so no
        // other batch can open the name unlocked in between.
        if !try_lock(temp.as_file())? {
            return Err(std::io::Error::other("the new file is locked"));
        }
        let new = temp.persist(&self.target).map_err(|e| e.error)?;
        sync_dir(&dir)?;
        // The handle that holds the new file's lock is the one appended to
        // from now on; the old file's lock goes with its handle.
        *file = new;
        Ok(())
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the file's exclusive lock, or says another batch holds it.
fn lock(file: &File, path: &Path) -> Result<(), ResultsError> {
    match try_lock(file) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ResultsError::Locked {
            path: path.display().to_string(),
        }),
        // A file system without locks (some network mounts) still works,
        // unguarded, as it did before locks.
        Err(_) => Ok(()),
    }
}

/// Takes an exclusive `flock` without waiting: `false` when another open
/// file holds it. (`File::try_lock` would do, but needs Rust 1.89.)
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock reads only the descriptor, which `file` keeps open.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, status: &str) -> ResultLine {
        ResultLine {
            id: id.into(),
            answer: Some(serde_json::json!(format!("answer of {id}"))),
            status: status.into(),
            answer_kind: None,
            iterations: 1,
            usage: serde_json::json!({}),
            cost_usd: Some(0.0),
            wall_s: 0.0,
            error: None,
            trace_error: None,
        }
    }

    fn ids_and_statuses(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let r: ResultLine = serde_json::from_str(l).unwrap();
                (r.id, r.status)
            })
            .collect()
    }

    #[test]
    fn superseded_lines_compact_to_the_latest_in_first_seen_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let (file, _) = ResultsFile::open(&path).unwrap();
        for (id, status) in [("a", "interrupted"), ("b", "submitted"), ("a", "submitted")] {
            file.append(&line(id, status)).unwrap();
        }
        assert_eq!(file.compact().unwrap(), 1);
        assert_eq!(
            ids_and_statuses(&path),
            [
                ("a".into(), "submitted".into()),
                ("b".into(), "submitted".into())
            ]
        );
        // Appending after a compaction goes to the end of the new file.
        file.append(&line("c", "failed")).unwrap();
        assert_eq!(ids_and_statuses(&path).len(), 3);
        assert_eq!(file.results().unwrap()["c"].status, "failed");
    }

    #[test]
    fn only_a_torn_result_at_the_end_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let whole = serde_json::to_string(&line("a", "submitted")).unwrap();
        let cases = [
            // (file body, foreign line if refused)
            (format!("{whole}\n{}", &whole[..20]), None),
            (format!("{whole}\n\n{whole}\n"), None),
            (format!("{whole}\nnot json\n{whole}\n"), Some(2)),
            (
                format!("{whole}\n{{\"id\": \"x\", \"query\": \"q\"}}\n"),
                Some(2),
            ),
            // Not newline-ended, yet not the start of a result.
            (format!("{whole}\nplain text"), Some(2)),
            // Newline-ended but cut: whole lines are never torn.
            (format!("{}\n", &whole[..20]), Some(1)),
        ];
        for (body, foreign) in cases {
            std::fs::write(&path, &body).unwrap();
            match (ResultsFile::open(&path), foreign) {
                (Ok((_, existing)), None) => {
                    assert_eq!(existing.results.len(), 1, "{body:?}");
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert_eq!(text, format!("{whole}\n"), "{body:?}");
                }
                (Err(ResultsError::Foreign { line, .. }), Some(n)) => {
                    assert_eq!(line, n, "{body:?}");
                    assert_eq!(std::fs::read_to_string(&path).unwrap(), body);
                }
                (other, _) => panic!("{body:?}: {:?}", other.map(|(_, e)| e)),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn compaction_keeps_the_mode_and_replaces_a_symlinks_target_not_the_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.jsonl");
        let link = dir.path().join("link.jsonl");
        let a = serde_json::to_string(&line("a", "interrupted")).unwrap();
        let b = serde_json::to_string(&line("a", "submitted")).unwrap();
        std::fs::write(&real, format!("{a}\n{b}\n")).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (_, existing) = ResultsFile::open(&link).unwrap();
        assert_eq!(existing.compacted, 1);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(ids_and_statuses(&real), [("a".into(), "submitted".into())]);
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_second_open_of_a_file_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let (first, _) = ResultsFile::open(&path).unwrap();
        first.append(&line("a", "interrupted")).unwrap();
        first.append(&line("a", "submitted")).unwrap();
        first.compact().unwrap();
        // The lock moved to the compacted file with the name.
        assert!(matches!(
            ResultsFile::open(&path),
            Err(ResultsError::Locked { .. })
        ));
        drop(first);
        assert!(ResultsFile::open(&path).is_ok());
    }
}
