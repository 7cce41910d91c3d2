//! The results file: one JSON line per finished task, appended whole.

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

impl ResultLine {
    /// Whether a re-run should run this task again.
    pub fn needs_rerun(&self, retry_failed: bool) -> bool {
        match self.status.as_str() {
            "interrupted" => true,
            "failed" | "error" => retry_failed,
            _ => false,
        }
    }
}

/// Appends result lines so that each line is written whole.
///
/// Each line goes out in one `write` to a file opened for appending, then is
/// flushed. A process killed between lines leaves whole lines; one killed
/// mid-write (or a full disk) leaves at most one torn last line, which the
/// next [`ResultsFile::open`] cuts off before appending.
pub struct ResultsFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl ResultsFile {
    /// Opens (creating if needed) the results file and reads the results
    /// already in it, by id (the last line of an id wins).
    ///
    /// Only a regular file is read back. A device or a pipe (`/dev/stdout`,
    /// `/dev/full`, a FIFO) is opened for appending alone: reading one could
    /// block forever or, like `/dev/zero` and `/dev/full`, never end.
    pub fn open(path: &Path) -> std::io::Result<(ResultsFile, HashMap<String, ResultLine>)> {
        let regular = std::fs::metadata(path).map_or(true, |m| m.is_file());
        let mut file = OpenOptions::new()
            .read(regular)
            .append(true)
            .create(true)
            .open(path)?;
        if !regular {
            return Ok((
                ResultsFile {
                    path: path.to_path_buf(),
                    file: Mutex::new(file),
                },
                HashMap::new(),
            ));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut done = HashMap::new();
        let mut valid = 0;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") {
                break; // torn by a kill or a full disk
            }
            match serde_json::from_slice::<ResultLine>(line) {
                Ok(r) => {
                    done.insert(r.id.clone(), r);
                }
                Err(_) if line.trim_ascii().is_empty() => {}
                Err(_) => break,
            }
            valid += line.len();
        }
        if valid < bytes.len() {
            file.set_len(valid as u64)?;
            file.seek(SeekFrom::End(0))?;
        }
        Ok((
            ResultsFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            done,
        ))
    }

    /// Appends one result.
    pub fn append(&self, result: &ResultLine) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(result).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.flush()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
