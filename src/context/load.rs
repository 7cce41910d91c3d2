//! Turning user arguments into a [`Context`].

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use memmap2::{Advice, Mmap};

use super::decompress::{Format, MAGIC_LEN};
use super::store::{Bytes, Segment, Store, TAIL_COPY_MAX};
use super::{Context, Document, FileStamp, SkipKind, Skipped};
use crate::error::{Error, Result};

/// Bytes sniffed at the start of a file to decide whether it is binary.
const SNIFF: usize = 8 << 10;
/// Files up to this size get `madvise(WILLNEED)`: it roughly halves a cold
/// first scan, but on files near the size of RAM it would evict everything else.
const WILLNEED_MAX: u64 = 8 << 30;
/// Files up to this size are read into memory instead of mapped. Below the
/// allocator's own mapping threshold (128 KiB in glibc), so these buffers
/// take no kernel map each either. Reading a small file costs no more
/// than mapping it (open, fstat, read versus open, fstat, mmap, a fault).
pub const READ_MAX: usize = 64 << 10;
/// The default cap on a stream (standard input, a FIFO): 4 GiB.
pub const DEFAULT_MAX_STREAM_BYTES: u64 = 4 << 30;
/// How long a stream may send nothing before loading fails: 60 s.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The kernel's default `vm.max_map_count`, where it cannot be read.
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;
/// Bytes copied per read while spooling a stream.
const SPOOL_BUFFER: usize = 256 << 10;

/// Options for loading a context.
///
/// What each kind of path becomes, decided deliberately:
///
/// | path | loaded as |
/// |---|---|
/// | a regular file up to [`READ_MAX`] | read into memory (a map per small file would exhaust the kernel's map limit, `vm.max_map_count`, at ~65,000 files, and then every allocation and thread start fails) |
/// | a larger regular file | memory-mapped; more than half of `vm.max_map_count` such files is an error, [`Error::TooManyMaps`] |
/// | a directory | walked recursively, sorted; only regular files, and not binary or hidden ones unless asked, nor those `.gitignore` or `.ignore` leave out (see [`ContextBuilder::ignore`]) |
/// | a glob | its matching regular files, sorted |
/// | a gzip, zstd, bzip2 or xz file (by its first bytes, whatever its name) | decompressed like a stream (see [`ContextBuilder::decompress`]); the document keeps the file's name, `.gz` and all |
/// | `-`, when standard input is a regular file (`< file`) | mapped like a named file |
/// | `-` otherwise, or a FIFO (`/dev/fd/N`, `<(cmd)`, `mkfifo`) | read as a stream |
/// | a character or block device, or a socket | refused ([`Error::NotAFile`]): `/dev/zero` never ends, and a device is not a document |
///
/// A stream is spooled to an unlinked temporary file and mapped, so it
/// never has to fit in memory, but it is capped at
/// [`ContextBuilder::max_stream_bytes`] (default
/// [`DEFAULT_MAX_STREAM_BYTES`]), so an endless one cannot fill the disk.
/// A FIFO is opened without blocking, and a stream that sends nothing for
/// [`ContextBuilder::read_timeout`] (default [`DEFAULT_READ_TIMEOUT`]) is
/// an error, [`Error::StreamStalled`]: a FIFO nobody writes to cannot hang
/// the process.
///
/// A compressed file is decompressed the same way: into memory up to
/// [`READ_MAX`], into an unlinked temporary file past it (or all into
/// memory in snapshot mode), and never more than `max_stream_bytes` of
/// it, so a decompression bomb is an error, [`Error::DecompressedTooLarge`],
/// after at most that much disk and a decoder's bounded memory.
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
    decompress: bool,
    ignore: bool,
    snapshot: bool,
    max_stream_bytes: u64,
    read_timeout: Duration,
    /// Files over [`READ_MAX`] that may be mapped; `None` derives it from
    /// `vm.max_map_count`. Set directly only by tests.
    map_budget: Option<usize>,
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

/// What loading has gathered so far.
struct Loading {
    inputs: Vec<Input>,
    skipped: Vec<Skipped>,
    /// Large files mapped (or, in snapshot mode, read into a buffer of their own).
    maps: usize,
    map_budget: usize,
}

impl Loading {
    /// Counts one more large file against the map budget.
    fn take_map(&mut self) -> Result<()> {
        if self.maps >= self.map_budget {
            return Err(Error::TooManyMaps {
                limit: self.map_budget,
            });
        }
        self.maps += 1;
        Ok(())
    }
}

impl ContextBuilder {
    /// Defaults: skip hidden entries, ignored entries and binary files
    /// inside directories (and binary files in globs), decompress
    /// compressed files, memory-map large files rather than copying them,
    /// cap streams and decompressed files at [`DEFAULT_MAX_STREAM_BYTES`]
    /// and wait [`DEFAULT_READ_TIMEOUT`] for a stream's next bytes.
    pub fn new() -> ContextBuilder {
        ContextBuilder {
            hidden: false,
            binary: false,
            decompress: true,
            ignore: true,
            snapshot: false,
            max_stream_bytes: DEFAULT_MAX_STREAM_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
            map_budget: None,
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

    /// Decompress gzip, zstd, bzip2 and xz files, recognised by their
    /// first bytes (default: yes). Off, a compressed file is bytes like any
    /// other: binary, so skipped in a directory or glob unless
    /// [`ContextBuilder::binary`], and loaded as it is when named.
    pub fn decompress(mut self, yes: bool) -> Self {
        self.decompress = yes;
        self
    }

    /// Honour `.gitignore`, `.ignore`, `.git/info/exclude` and git's global
    /// excludes file when walking a directory (default: yes), inside a git
    /// repository or not. Files and globs named explicitly are never
    /// filtered by them.
    pub fn ignore(mut self, yes: bool) -> Self {
        self.ignore = yes;
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

    /// The most bytes read from a stream (standard input, a FIFO) or
    /// decompressed from one compressed file; a longer one is an error,
    /// [`Error::StreamTooLarge`] or [`Error::DecompressedTooLarge`], and
    /// its spool is freed. Plain files are mapped and have no such limit.
    pub fn max_stream_bytes(mut self, bytes: u64) -> Self {
        self.max_stream_bytes = bytes;
        self
    }

    /// How long a stream may send nothing (a FIFO no one opened for
    /// writing, a stalled pipe) before loading fails with
    /// [`Error::StreamStalled`]. Applies to standard input and FIFOs when
    /// the reader can wait on them (Unix); not to [`ContextBuilder::read`].
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Opens each argument: a file, a directory (recursively, sorted), a glob,
    /// or `-` for standard input. See [`ContextBuilder`] for what each kind
    /// of path becomes.
    pub fn open<P: AsRef<Path>>(&self, args: &[P]) -> Result<Context> {
        let mut loading = Loading {
            inputs: Vec::new(),
            skipped: Vec::new(),
            maps: 0,
            map_budget: self.map_budget.unwrap_or_else(map_budget),
        };
        for arg in args {
            self.expand(arg.as_ref(), &mut loading)?;
        }
        Ok(layout(loading.inputs, loading.skipped))
    }

    /// Reads a stream to its end and makes it a context of one document.
    ///
    /// The stream is spooled to an unlinked temporary file and mapped, so a
    /// huge pipe does not have to fit in RAM (unless snapshot mode is on).
    /// It is capped at [`ContextBuilder::max_stream_bytes`].
    pub fn read(&self, name: &str, reader: impl Read) -> Result<Context> {
        let input = self.spool(name, Path::new(name), reader, None)?;
        let input = self.unpack_spooled(input, Path::new(name), None)?;
        Ok(layout(vec![input], Vec::new()))
    }

    /// Copies a stream into a buffer or an unlinked temporary file, at most
    /// `max_stream_bytes` of it. `shown` names it in errors. A spool over
    /// [`READ_MAX`] takes a map from `loading`'s budget, when there is one.
    fn spool(
        &self,
        name: &str,
        shown: &Path,
        reader: impl Read,
        loading: Option<&mut Loading>,
    ) -> Result<Input> {
        let fail = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                Error::StreamStalled {
                    path: shown.to_path_buf(),
                    seconds: self.read_timeout.as_secs_f64(),
                }
            } else {
                Error::io(shown, e)
            }
        };
        let bytes = self.fill(reader, loading).map_err(|e| match e {
            Fill::Read(e) | Fill::Write(e) => fail(e),
            Fill::TooLarge => Error::StreamTooLarge {
                path: shown.to_path_buf(),
                limit: self.max_stream_bytes,
            },
            Fill::Maps(e) => e,
        })?;
        Ok(Input {
            name: name.to_string(),
            path: None,
            bytes,
            stamp: None,
        })
    }

    /// Reads `reader` to its end, at most `max_stream_bytes`: into memory
    /// up to [`READ_MAX`] (a map per small input would exhaust
    /// `vm.max_map_count`), into an unlinked temporary file and its map
    /// past it, or all into memory in snapshot mode.
    fn fill(&self, reader: impl Read, loading: Option<&mut Loading>) -> Result<Bytes, Fill> {
        let limit = self.max_stream_bytes;
        // One byte past the limit tells an input of exactly `limit` bytes
        // from a longer one.
        let mut reader = reader.take(limit.saturating_add(1));
        let mut buf = Vec::new();
        (&mut reader)
            .take(READ_MAX as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(Fill::Read)?;
        if buf.len() as u64 > limit {
            return Err(Fill::TooLarge);
        }
        if buf.len() <= READ_MAX {
            return Ok(Arc::new(buf));
        }
        if let Some(loading) = loading {
            loading.take_map().map_err(Fill::Maps)?;
        }
        if self.snapshot {
            reader.read_to_end(&mut buf).map_err(Fill::Read)?;
            if buf.len() as u64 > limit {
                return Err(Fill::TooLarge);
            }
            return Ok(Arc::new(buf));
        }
        let mut file = tempfile::tempfile().map_err(Fill::Write)?;
        file.write_all(&buf).map_err(Fill::Write)?;
        let n = copy(&mut reader, &mut file)?;
        if buf.len() as u64 + n > limit {
            // Dropping the unlinked file gives its space back.
            return Err(Fill::TooLarge);
        }
        file.flush().map_err(Fill::Write)?;
        // SAFETY: the file is unlinked and private to this process.
        Ok(Arc::new(unsafe { Mmap::map(&file) }.map_err(Fill::Write)?))
    }

    /// The decompressed bytes of a compressed file, spooled as a stream is.
    /// `source` reads the compressed bytes; `path` names the file in errors.
    fn unpack(
        &self,
        format: Format,
        source: impl Read + Send,
        path: &Path,
        loading: Option<&mut Loading>,
    ) -> Result<Bytes> {
        let decoder = format.decoder(std::io::BufReader::with_capacity(SPOOL_BUFFER, source));
        self.fill(decoder, loading).map_err(|e| match e {
            // A read error from the decoder is the archive's (the file was
            // open and readable): corrupt data or a truncated end.
            Fill::Read(e) => Error::Corrupt {
                path: path.to_path_buf(),
                format: format.name(),
                message: decoder_message(&e),
            },
            Fill::Write(e) => Error::io(path, e),
            Fill::TooLarge => Error::DecompressedTooLarge {
                path: path.to_path_buf(),
                format: format.name(),
                limit: self.max_stream_bytes,
            },
            Fill::Maps(e) => e,
        })
    }

    /// A spooled stream, decompressed when it is compressed.
    fn unpack_spooled(
        &self,
        input: Input,
        shown: &Path,
        loading: Option<&mut Loading>,
    ) -> Result<Input> {
        let data = (*input.bytes).as_ref();
        let format = match Format::detect(data) {
            Some(format) if self.decompress => format,
            _ => return Ok(input),
        };
        let bytes = self.unpack(format, data, shown, loading)?;
        Ok(Input { bytes, ..input })
    }

    fn expand(&self, arg: &Path, loading: &mut Loading) -> Result<()> {
        if arg.as_os_str() == "-" {
            let input = self.stdin(loading)?;
            loading.inputs.push(input);
            return Ok(());
        }
        match std::fs::metadata(arg) {
            Ok(meta) if meta.is_dir() => self.walk(arg, loading),
            Ok(_) => {
                let input = self.named(arg, display(arg), loading)?;
                loading.inputs.push(input);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_glob(arg) => {
                self.glob(arg, loading)
            }
            Err(e) => Err(Error::io(arg, e)),
        }
    }

    /// Standard input: mapped when it is a regular file read from its
    /// start, a stream otherwise.
    fn stdin(&self, loading: &mut Loading) -> Result<Input> {
        const NAME: &str = "<stdin>";
        let shown = Path::new("standard input");
        #[cfg(unix)]
        {
            use std::io::Seek;
            use std::os::fd::AsFd;
            let fd = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io(shown, e))?;
            let mut file = File::from(fd);
            let meta = file.metadata().map_err(|e| Error::io(shown, e))?;
            if meta.is_file() && file.stream_position().is_ok_and(|p| p == 0) {
                let input = self.regular(&file, &meta, shown, NAME.into(), loading)?;
                // A file on standard input has no path to check again.
                return Ok(Input {
                    path: None,
                    stamp: None,
                    ..input
                });
            }
            let input = self.spool(
                NAME,
                shown,
                Waiting::new(file, self.read_timeout),
                Some(&mut *loading),
            )?;
            self.unpack_spooled(input, shown, Some(loading))
        }
        #[cfg(not(unix))]
        {
            let input = self.spool(NAME, shown, std::io::stdin().lock(), Some(&mut *loading))?;
            self.unpack_spooled(input, shown, Some(loading))
        }
    }

    /// A path named on the command line (not found by walking or globbing).
    fn named(&self, path: &Path, name: String, loading: &mut Loading) -> Result<Input> {
        let io = |e| Error::io(path, e);
        let file = open_nonblocking(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_file() {
            return self.regular(&file, &meta, path, name, loading);
        }
        match special_kind(&meta) {
            Some(kind) => Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind,
            }),
            None => {
                // A FIFO (or another stream this platform has).
                let file = blocking(file).map_err(io)?;
                let input = self.spool(
                    &name,
                    path,
                    Waiting::new(file, self.read_timeout),
                    Some(&mut *loading),
                )?;
                let mut input = self.unpack_spooled(input, path, Some(loading))?;
                input.path = Some(path.to_path_buf());
                Ok(input)
            }
        }
    }

    /// A directory: its regular files, in path order, without hidden or
    /// ignored ones unless asked. The walk is parallel; the sort makes the
    /// order the same on every run, component by component
    /// (`a/b.txt` before `a.txt`), as a sorted recursive listing.
    fn walk(&self, dir: &Path, loading: &mut Loading) -> Result<()> {
        let before = loading.inputs.len() + loading.skipped.len();
        let (files, errors) = self.list(dir);
        for (path, error) in errors {
            loading.skipped.push(Skipped {
                path,
                kind: SkipKind::Unreadable,
                reason: error,
            });
        }
        for path in files {
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let name = display(rel);
            self.candidate(&path, name, loading)?;
        }
        if loading.inputs.len() + loading.skipped.len() == before {
            return Err(Error::NoFiles {
                what: format!("directory {}", crate::escape::line(&display(dir))),
            });
        }
        Ok(())
    }

    /// The regular files under `dir`, sorted, and the entries that could
    /// not be read, with the error.
    fn list(&self, dir: &Path) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
        let mut walker = ignore::WalkBuilder::new(dir);
        walker
            .hidden(!self.hidden)
            .ignore(self.ignore)
            .git_ignore(self.ignore)
            .git_exclude(self.ignore)
            .git_global(self.ignore)
            .parents(self.ignore)
            // A .gitignore means the same in a copy without `.git`.
            .require_git(false)
            .follow_links(false);
        let found = std::sync::Mutex::new((Vec::new(), Vec::new()));
        walker.build_parallel().run(|| {
            let found = &found;
            Box::new(move |entry| {
                let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
                match entry {
                    Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                        found.0.push(e.into_path())
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let path = error_path(&e).unwrap_or(dir).to_path_buf();
                        found.1.push((path, e.to_string()));
                    }
                }
                ignore::WalkState::Continue
            })
        });
        let (mut files, mut errors) = found.into_inner().unwrap_or_else(|p| p.into_inner());
        files.sort();
        errors.sort();
        (files, errors)
    }

    fn glob(&self, pattern: &Path, loading: &mut Loading) -> Result<()> {
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
                Err(e) => loading.skipped.push(Skipped {
                    path: e.path().to_path_buf(),
                    kind: SkipKind::Unreadable,
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
            self.candidate(&f, name, loading)?;
        }
        Ok(())
    }

    /// A file found by walking or globbing: loaded unless it is binary,
    /// unreadable, a corrupt or oversized archive, or no longer a regular
    /// file. Only running out of maps stops the load.
    fn candidate(&self, path: &Path, name: String, loading: &mut Loading) -> Result<()> {
        let skip = |loading: &mut Loading, kind: SkipKind, reason: String| {
            loading.skipped.push(Skipped {
                path: path.to_path_buf(),
                kind,
                reason,
            });
        };
        let opened = open_nonblocking(path).and_then(|f| {
            let meta = f.metadata()?;
            Ok((f, meta))
        });
        let (file, meta) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                skip(
                    loading,
                    SkipKind::Unreadable,
                    Error::io(path, e).to_string(),
                );
                return Ok(());
            }
        };
        if !meta.is_file() {
            // Replaced by a FIFO or a device since the directory was read.
            skip(loading, SkipKind::NotAFile, "not a regular file".into());
            return Ok(());
        }
        let head = match head(&file) {
            Ok(head) => head,
            Err(e) => {
                skip(
                    loading,
                    SkipKind::Unreadable,
                    Error::io(path, e).to_string(),
                );
                return Ok(());
            }
        };
        let compressed = self.decompress && Format::detect(&head).is_some();
        if !self.binary && !compressed && is_binary(&head) {
            skip(
                loading,
                SkipKind::Binary,
                "binary (NUL byte in the first 8 KiB)".into(),
            );
            return Ok(());
        }
        let input = match self.regular(&file, &meta, path, name, loading) {
            Ok(input) => input,
            Err(e @ Error::TooManyMaps { .. }) => return Err(e),
            Err(e) => {
                let kind = match e {
                    Error::Corrupt { .. } => SkipKind::Corrupt,
                    Error::DecompressedTooLarge { .. } => SkipKind::TooLarge,
                    _ => SkipKind::Unreadable,
                };
                skip(loading, kind, e.to_string());
                return Ok(());
            }
        };
        if compressed && !self.binary && is_binary((*input.bytes).as_ref()) {
            // A .tar.gz is an archive of files, not a document.
            skip(
                loading,
                SkipKind::Binary,
                "binary after decompression (NUL byte in the first 8 KiB)".into(),
            );
            return Ok(());
        }
        loading.inputs.push(input);
        Ok(())
    }

    /// A regular file, read into memory or mapped.
    fn regular(
        &self,
        file: &File,
        meta: &std::fs::Metadata,
        path: &Path,
        name: String,
        loading: &mut Loading,
    ) -> Result<Input> {
        let io = |e| Error::io(path, e);
        if self.decompress {
            if let Some(format) = Format::detect(&read_head(file, MAGIC_LEN).map_err(io)?) {
                // Only the size that was stamped, as below. The bytes are a
                // private copy, so the file changing later cannot fault them:
                // no stamp to check.
                let bytes = self.unpack(format, file.take(meta.len()), path, Some(loading))?;
                return Ok(Input {
                    name,
                    path: Some(path.to_path_buf()),
                    bytes,
                    stamp: None,
                });
            }
        }
        let stamp = FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        let small = meta.len() <= READ_MAX as u64;
        let bytes: Bytes = if small || self.snapshot {
            if !small {
                // A buffer this large is a kernel map of its own too.
                loading.take_map()?;
            }
            let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
            // Only the size that was stamped: a file growing meanwhile is
            // caught by `Context::check_unchanged`, not read without end.
            file.take(meta.len()).read_to_end(&mut buf).map_err(io)?;
            Arc::new(buf)
        } else {
            loading.take_map()?;
            // SAFETY: the map is read-only. Another process truncating the
            // file would fault on access; `Context::check_unchanged` detects
            // that between steps and snapshot mode avoids it entirely.
            let map = unsafe { Mmap::map(file) }.map_err(io)?;
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

/// The path an `ignore` walk error is about, if it names one.
fn error_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child),
        ignore::Error::Partial(errors) => errors.iter().find_map(error_path),
        _ => None,
    }
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(SNIFF)]).is_some()
}

/// The first [`SNIFF`] bytes of a file, read without moving its offset.
fn head(file: &File) -> std::io::Result<Vec<u8>> {
    read_head(file, SNIFF)
}

/// The first `len` bytes of a file (fewer if it is shorter), read without
/// moving its offset.
fn read_head(file: &File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut filled = 0;
    while filled < len {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[filled..], filled as u64)?;
        #[cfg(not(unix))]
        let n = std::os::windows::fs::FileExt::seek_read(file, &mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Why [`ContextBuilder::fill`] failed: reading the source (a stream's or
/// a decoder's fault), writing the spool (the disk's), the size limit, or
/// the map budget.
enum Fill {
    Read(std::io::Error),
    Write(std::io::Error),
    TooLarge,
    Maps(Error),
}

/// Like `io::copy`, with a buffer large enough for fast pipes, telling
/// read errors from write errors.
fn copy(reader: &mut impl Read, writer: &mut impl Write) -> Result<u64, Fill> {
    let mut buf = vec![0; SPOOL_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fill::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(Fill::Write)?;
        total += n as u64;
    }
}

/// A decoder's error as a message: an early end is a truncated file,
/// whatever wording the decoder gives it.
fn decoder_message(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "unexpected end of the compressed data".into()
    } else {
        e.to_string()
    }
}

/// Large files that may be mapped: half of `vm.max_map_count`, leaving
/// the rest to thread stacks, the allocator and the script's large strings.
fn map_budget() -> usize {
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT);
    max / 2
}

/// Opens for reading without waiting: opening a FIFO with no writer would
/// otherwise block until one comes, perhaps forever.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// The file with `O_NONBLOCK` cleared: reads then wait for data (bounded
/// by [`Waiting`]) instead of failing with `EAGAIN`.
fn blocking(file: File) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: F_GETFL and F_SETFL on a descriptor this function owns.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// What a path that is neither a file, a directory nor a FIFO is.
fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return Some("character device");
        }
        if t.is_block_device() {
            return Some("block device");
        }
        if t.is_socket() {
            return Some("socket");
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// A stream whose every read waits at most `timeout` for data; past it the
/// read fails with `TimedOut`. It polls before reading, so standard input
/// is never switched to non-blocking mode (which would leak to the shell
/// sharing it).
struct Waiting {
    file: File,
    #[cfg_attr(not(unix), allow(dead_code))]
    timeout: Duration,
}

impl Waiting {
    fn new(file: File, timeout: Duration) -> Waiting {
        Waiting { file, timeout }
    }

    #[cfg(unix)]
    fn wait(&self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            let mut fd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, owned by this frame.
            match unsafe { libc::poll(&mut fd, 1, ms) } {
                // Readable, at its end, or in error: the read says which.
                n if n > 0 => return Ok(()),
                0 => continue,
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl Read for Waiting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        self.wait()?;
        self.file.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn large_files(dir: &Path, count: usize) {
        for i in 0..count {
            std::fs::write(dir.join(format!("big{i}.txt")), vec![b'x'; READ_MAX + 1]).unwrap();
        }
    }

    #[test]
    fn more_large_files_than_the_map_budget_is_an_error_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        large_files(dir.path(), 3);
        std::fs::write(dir.path().join("small.txt"), "small\n").unwrap();
        for snapshot in [false, true] {
            let tight = ContextBuilder {
                map_budget: Some(2),
                ..ContextBuilder::new().snapshot(snapshot)
            };
            let err = tight.open(&[dir.path()]).unwrap_err();
            assert!(matches!(err, Error::TooManyMaps { limit: 2 }), "{err}");
            assert!(err.to_string().contains("vm.max_map_count"), "{err}");
            // Small files take no map: three large ones fit a budget of three.
            let enough = ContextBuilder {
                map_budget: Some(3),
                ..tight
            };
            assert_eq!(enough.open(&[dir.path()]).unwrap().document_info().len(), 4);
        }
    }

    #[test]
    fn a_stream_longer_than_the_cap_is_refused_and_one_of_the_cap_is_kept() {
        for snapshot in [false, true] {
            let capped = ContextBuilder::new()
                .snapshot(snapshot)
                .max_stream_bytes(10);
            let ctx = capped.read("pipe", &b"0123456789"[..]).unwrap();
            assert_eq!(ctx.len(), 10);
            let err = capped.read("pipe", &b"0123456789!"[..]).unwrap_err();
            assert!(
                matches!(err, Error::StreamTooLarge { limit: 10, .. }),
                "{err}"
            );
            assert!(
                err.to_string()
                    .starts_with("pipe is longer than the limit of 10 B"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_file_name_with_a_newline_gets_a_one_line_header() {
        let ctx = Context::from_documents([
            ("a\n==> b <==".to_string(), b"one\n".to_vec()),
            ("c".to_string(), b"two\n".to_vec()),
        ]);
        assert_eq!(
            ctx.text().to_string(),
            "==> a\\n==> b <== <==\none\n==> c <==\ntwo\n"
        );
        assert_eq!(ctx.document_info()[0].name, "a\\n==> b <==");
    }
}
