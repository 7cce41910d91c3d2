//! Turning user arguments into a [`Context`].

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Advice, Mmap};

use super::store::{Bytes, Segment, Store, TAIL_COPY_MAX};
use super::{Context, Document, FileStamp, Skipped};
use crate::error::{Error, Result};

/// Bytes sniffed at the start of a file to decide whether it is binary.
const SNIFF: usize = 8 << 10;
/// Files up to this size get `madvise(WILLNEED)`: it roughly halves a cold
/// first scan, but on files near the size of RAM it would evict everything else.
const WILLNEED_MAX: u64 = 8 << 30;

/// Options for loading a context.
///
/// ```no_run
/// let ctx = rlm::ContextBuilder::new()
///     .hidden(true)
///     .open(&["./corpus", "notes/*.md"])?;
/// # Ok::<(), rlm::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    hidden: bool,
    binary: bool,
    snapshot: bool,
}

impl Default for ContextBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// One input before layout: where its bytes come from and what to call it.
struct Input {
    name: String,
    path: Option<PathBuf>,
    bytes: Bytes,
    stamp: Option<FileStamp>,
}

impl ContextBuilder {
    /// Defaults: skip hidden entries and binary files inside directories and
    /// globs, and memory-map files rather than copying them.
    pub fn new() -> ContextBuilder {
        ContextBuilder {
            hidden: false,
            binary: false,
            snapshot: false,
        }
    }

    /// Include entries whose name starts with `.` when walking a directory.
    pub fn hidden(mut self, yes: bool) -> Self {
        self.hidden = yes;
        self
    }

    /// Include files that look binary (a NUL byte in the first 8 KiB) when
    /// walking a directory or glob. Files named explicitly are always included.
    pub fn binary(mut self, yes: bool) -> Self {
        self.binary = yes;
        self
    }

    /// Copy every file into memory this process owns instead of mapping it.
    ///
    /// Costs a full read and RAM equal to the input, and buys immunity from
    /// other processes truncating or rewriting the files mid-run.
    pub fn snapshot(mut self, yes: bool) -> Self {
        self.snapshot = yes;
        self
    }

    /// Opens each argument: a file, a directory (recursively, sorted), a glob,
    /// or `-` for standard input.
    pub fn open<P: AsRef<Path>>(&self, args: &[P]) -> Result<Context> {
        let mut inputs = Vec::new();
        let mut skipped = Vec::new();
        for arg in args {
            self.expand(arg.as_ref(), &mut inputs, &mut skipped)?;
        }
        Ok(layout(inputs, skipped))
    }

    /// Reads a stream to its end and makes it a context of one document.
    ///
    /// The stream is spooled to an unlinked temporary file and mapped, so a
    /// huge pipe does not have to fit in RAM (unless snapshot mode is on).
    pub fn read(&self, name: &str, reader: impl Read) -> Result<Context> {
        let input = self.spool(name, reader)?;
        Ok(layout(vec![input], Vec::new()))
    }

    fn spool(&self, name: &str, mut reader: impl Read) -> Result<Input> {
        let io = |e| Error::io(name, e);
        let bytes: Bytes = if self.snapshot {
            let mut buf = Vec::new();
            reader.read_to_end(&mut buf).map_err(io)?;
            Arc::new(buf)
        } else {
            let mut file = tempfile::tempfile().map_err(io)?;
            let n = std::io::copy(&mut reader, &mut file).map_err(io)?;
            file.flush().map_err(io)?;
            if n == 0 {
                Arc::new(Vec::<u8>::new())
            } else {
                // SAFETY: the file is unlinked and private to this process.
                Arc::new(unsafe { Mmap::map(&file) }.map_err(io)?)
            }
        };
        Ok(Input {
            name: name.to_string(),
            path: None,
            bytes,
            stamp: None,
        })
    }

    fn expand(
        &self,
        arg: &Path,
        inputs: &mut Vec<Input>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        if arg.as_os_str() == "-" {
            inputs.push(self.spool("<stdin>", std::io::stdin().lock())?);
            return Ok(());
        }
        match std::fs::metadata(arg) {
            Ok(meta) if meta.is_dir() => self.walk(arg, inputs, skipped),
            Ok(_) => {
                inputs.push(self.file(arg, display(arg))?);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_glob(arg) => {
                self.glob(arg, inputs, skipped)
            }
            Err(e) => Err(Error::io(arg, e)),
        }
    }

    fn walk(&self, dir: &Path, inputs: &mut Vec<Input>, skipped: &mut Vec<Skipped>) -> Result<()> {
        let before = inputs.len() + skipped.len();
        let hidden = self.hidden;
        let walker = walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| hidden || e.depth() == 0 || !is_hidden(e.file_name()));
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e
                        .path()
                        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
                    skipped.push(Skipped {
                        path,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            self.candidate(entry.path(), display(rel), inputs, skipped);
        }
        if inputs.len() + skipped.len() == before {
            return Err(Error::NoFiles {
                what: format!("directory {}", dir.display()),
            });
        }
        Ok(())
    }

    fn glob(
        &self,
        pattern: &Path,
        inputs: &mut Vec<Input>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        let text = pattern.to_string_lossy();
        let paths = glob::glob(&text).map_err(|e| Error::Glob {
            pattern: text.to_string(),
            message: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for p in paths {
            match p {
                Ok(p) if p.is_file() => files.push(p),
                Ok(_) => {}
                Err(e) => skipped.push(Skipped {
                    path: e.path().to_path_buf(),
                    reason: e.error().to_string(),
                }),
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::NoFiles {
                what: format!("glob {text:?}"),
            });
        }
        for f in files {
            let name = display(&f);
            self.candidate(&f, name, inputs, skipped);
        }
        Ok(())
    }

    /// A file found by walking or globbing: loaded unless it is binary or unreadable.
    fn candidate(
        &self,
        path: &Path,
        name: String,
        inputs: &mut Vec<Input>,
        skipped: &mut Vec<Skipped>,
    ) {
        if !self.binary {
            match looks_binary(path) {
                Ok(false) => {}
                Ok(true) => {
                    skipped.push(Skipped {
                        path: path.to_path_buf(),
                        reason: "binary (NUL byte in the first 8 KiB)".into(),
                    });
                    return;
                }
                Err(e) => {
                    skipped.push(Skipped {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    });
                    return;
                }
            }
        }
        match self.file(path, name) {
            Ok(input) => inputs.push(input),
            Err(e) => skipped.push(Skipped {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }

    fn file(&self, path: &Path, name: String) -> Result<Input> {
        let io = |e| Error::io(path, e);
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            // FIFOs, character devices and the like cannot be mapped.
            let mut input = self.spool(&name, file)?;
            input.path = Some(path.to_path_buf());
            return Ok(input);
        }
        let stamp = FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        let bytes: Bytes = if meta.len() == 0 {
            Arc::new(Vec::<u8>::new())
        } else if self.snapshot {
            Arc::new(std::fs::read(path).map_err(io)?)
        } else {
            // SAFETY: the map is read-only. Another process truncating the
            // file would fault on access; `Context::check_unchanged` detects
            // that between steps and snapshot mode avoids it entirely.
            let map = unsafe { Mmap::map(&file) }.map_err(io)?;
            if meta.len() <= WILLNEED_MAX {
                // Advice is a hint; failing to give it changes nothing.
                let _ = map.advise(Advice::WillNeed);
            }
            Arc::new(map)
        };
        Ok(Input {
            name,
            path: Some(path.to_path_buf()),
            bytes,
            stamp: (!self.snapshot).then_some(stamp),
        })
    }
}

/// Lays in-memory documents end to end, as files would be.
pub(super) fn layout_owned(documents: impl IntoIterator<Item = (String, Vec<u8>)>) -> Context {
    let inputs = documents
        .into_iter()
        .map(|(name, bytes)| Input {
            name,
            path: None,
            bytes: Arc::new(bytes),
            stamp: None,
        })
        .collect();
    layout(inputs, Vec::new())
}

/// Lays inputs end to end, with a header line before each when there are several.
///
/// Keeps every segment boundary a line boundary (see [`super::store`]): a
/// document without a final newline ends its segment at its last newline,
/// and the rest of its last line opens the next header segment.
fn layout(inputs: Vec<Input>, skipped: Vec<Skipped>) -> Context {
    let headers = inputs.len() > 1;
    let count = inputs.len();
    let mut segments = Vec::with_capacity(count * 2);
    let mut documents = Vec::with_capacity(count);
    let mut pos = 0;
    let mut ends_in_newline = true;
    // The partial last line of the previous document, for the next header.
    let mut carried: Vec<u8> = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        // Escaped, so that a newline in a file name cannot forge a header.
        let name = crate::escape::line(&input.name).into_owned();
        if headers {
            let mut header = std::mem::take(&mut carried);
            let header_start = pos - header.len();
            if !ends_in_newline {
                header.push(b'\n');
            }
            header.extend_from_slice(format!("==> {name} <==\n").as_bytes());
            pos = header_start + header.len();
            segments.push(Segment::new(header_start, Arc::new(header)));
        }
        let data = (*input.bytes).as_ref();
        let len = data.len();
        if len > 0 {
            ends_in_newline = data[len - 1] == b'\n';
        }
        documents.push(Document {
            name,
            start: pos,
            end: pos + len,
            path: input.path,
            stamp: input.stamp,
        });
        let whole_lines = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
        let last = i + 1 == count;
        if headers && !last && len - whole_lines <= TAIL_COPY_MAX {
            carried = data[whole_lines..].to_vec();
            segments.push(Segment::prefix(pos, input.bytes.clone(), whole_lines));
        } else {
            segments.push(Segment::new(pos, input.bytes));
        }
        pos += len;
    }
    Context {
        store: Arc::new(Store::new(segments, documents)),
        skipped: Arc::new(skipped),
    }
}

fn display(path: &Path) -> String {
    let s = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

fn looks_binary(path: &Path) -> std::io::Result<bool> {
    let mut buf = vec![0; SNIFF];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < SNIFF {
        let n = file.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(memchr::memchr(0, &buf[..filled]).is_some())
}
