//! Loading input into a [`Context`]: files, directories, globs and stdin.
//!
//! Files are memory-mapped, never read eagerly, so opening a 40 GB log costs
//! a few system calls; only files up to 64 KiB are read, so that a
//! directory of 100,000 small files does not take 100,000 kernel maps (see
//! [`ContextBuilder`] for what each kind of path becomes, streams included).
//! Several files are laid end to end as one text, each preceded by a header
//! line `==> name <==` so that both a script and a model can see where a
//! document starts; control characters in names are escaped
//! ([`crate::escape::line()`]), so a file name cannot forge a header. A
//! single file or stdin gets no header: the context is exactly its bytes.
//!
//! Two decisions about what a user has on disk:
//!
//! * **Compressed files** (gzip, zstd, bzip2, xz), recognised by their
//!   first bytes and not their names, are decompressed into memory or an
//!   unlinked temporary file, at most `max_stream_bytes` each, and then
//!   are documents like any other. A document keeps its file's name,
//!   `logs/app.log.gz` and not `logs/app.log`: the name is the one to look
//!   for on disk, and `app.log` and `app.log.gz` side by side stay two
//!   documents. A corrupt archive named on the command line is an error;
//!   one of many found in a directory is skipped with the reason
//!   ([`SkipKind::Corrupt`]), as an unreadable file is.
//! * **Directory walks** honour `.gitignore`, `.ignore`, `.git/info/exclude`
//!   and the global git excludes file, as ripgrep does, through its own
//!   `ignore` crate; unlike ripgrep, a `.gitignore` applies outside a git
//!   repository too (an exported tree or a copy without `.git` has the same
//!   `target/` to leave out). Files and globs named explicitly are never
//!   filtered. `ContextBuilder::ignore(false)` (`--no-ignore`) walks everything.

mod decompress;
mod load;
pub(crate) mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::text::Text;
use store::Store;

pub use decompress::Format as Compression;
pub use load::{ContextBuilder, DEFAULT_MAX_STREAM_BYTES, DEFAULT_READ_TIMEOUT, READ_MAX};

/// One input document within a context.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's name: its path relative to the argument that named
    /// it, with control characters escaped (a newline becomes `\n`).
    pub name: String,
    /// Global byte offset of the document's first content byte (after its header).
    pub start: usize,
    /// Global byte offset one past its last content byte.
    pub end: usize,
    /// Where it came from, for files.
    pub path: Option<PathBuf>,
    /// Size and modification time when it was opened, for files that are mapped.
    pub(crate) stamp: Option<FileStamp>,
}

impl Document {
    /// Size of the document in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for a document of zero bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// A file passed over while loading a directory or glob, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file (or directory, when it could not be read).
    pub path: PathBuf,
    /// What kind of reason, for summaries that count files by reason.
    pub kind: SkipKind,
    /// The whole reason, naming the file where the message does.
    pub reason: String,
}

/// Why a file was passed over, as summaries group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipKind {
    /// A NUL byte in its first 8 KiB (after decompression, for an archive).
    Binary,
    /// It could not be opened, read or listed.
    Unreadable,
    /// It stopped being a regular file between listing and opening.
    NotAFile,
    /// A compressed file that does not decompress.
    Corrupt,
    /// A compressed file that decompresses to more than the limit.
    TooLarge,
}

impl SkipKind {
    /// One line saying what the files of this kind have in common, and
    /// the flag that changes it where there is one.
    pub fn describe(self) -> &'static str {
        match self {
            SkipKind::Binary => "binary: a NUL byte in the first 8 KiB (--binary loads them)",
            SkipKind::Unreadable => "unreadable",
            SkipKind::NotAFile => "no longer a regular file",
            SkipKind::Corrupt => "corrupt or truncated compressed files",
            SkipKind::TooLarge => {
                "decompress to more than --max-stream-size (raise it to load them)"
            }
        }
    }
}

/// The files skipped for one kind of reason: how many, and the first.
#[derive(Debug, Clone)]
pub struct SkipGroup<'a> {
    /// The reason they share.
    pub kind: SkipKind,
    /// How many files.
    pub count: usize,
    /// The first of them, in load order, as an example.
    pub first: &'a Skipped,
}

/// Groups skipped files by kind of reason, in the order of [`SkipKind`].
pub fn group_skipped(skipped: &[Skipped]) -> Vec<SkipGroup<'_>> {
    let mut groups: Vec<SkipGroup<'_>> = Vec::new();
    for s in skipped {
        match groups.iter_mut().find(|g| g.kind == s.kind) {
            Some(g) => g.count += 1,
            None => groups.push(SkipGroup {
                kind: s.kind,
                count: 1,
                first: s,
            }),
        }
    }
    groups.sort_by_key(|g| g.kind);
    groups
}

/// The whole input of a run: one or more documents presented as one text.
///
/// ```
/// let ctx = rlm::Context::from_string("notes", "alpha\nbeta\n");
/// assert_eq!(ctx.len(), 11);
/// assert_eq!(ctx.text().line(2).unwrap().to_string(), "beta");
/// ```
#[derive(Clone)]
pub struct Context {
    store: Arc<Store>,
    skipped: Arc<Vec<Skipped>>,
}

impl Context {
    /// Opens files, directories, globs or `-` (stdin) with default options.
    pub fn open<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Context> {
        ContextBuilder::new().open(paths)
    }

    /// A context over an in-memory string, as one document named `name`.
    pub fn from_string(name: &str, text: impl Into<String>) -> Context {
        Context::from_bytes(name, text.into().into_bytes())
    }

    /// A context over owned bytes, as one document named `name`.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Context {
        let len = bytes.len();
        let doc = Document {
            name: name.to_string(),
            start: 0,
            end: len,
            path: None,
            stamp: None,
        };
        let data: store::Bytes = Arc::new(bytes);
        Context {
            store: Arc::new(Store::new(vec![store::Segment::new(0, data)], vec![doc])),
            skipped: Arc::default(),
        }
    }

    /// A context over several in-memory documents, laid end to end with a
    /// `==> name <==` header line before each, as files are.
    ///
    /// ```
    /// let ctx = rlm::Context::from_documents([
    ///     ("a.txt".to_string(), b"one\n".to_vec()),
    ///     ("b.txt".to_string(), b"two".to_vec()),
    /// ]);
    /// assert_eq!(ctx.documents()[1].to_string(), "two");
    /// assert_eq!(ctx.text().line(3).unwrap().to_string(), "==> b.txt <==");
    /// ```
    pub fn from_documents(documents: impl IntoIterator<Item = (String, Vec<u8>)>) -> Context {
        load::layout_owned(documents)
    }

    /// The whole context as one view.
    pub fn text(&self) -> Text {
        Text::whole(self.store.clone())
    }

    /// One view per document, without headers.
    pub fn documents(&self) -> Vec<Text> {
        self.text().documents()
    }

    /// Metadata of every document, in order.
    pub fn document_info(&self) -> &[Document] {
        &self.store.documents
    }

    /// Files passed over while loading (binary files, unreadable entries,
    /// corrupt archives), in load order; [`group_skipped`] counts them by reason.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Total size in bytes, headers included.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// True when the context holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Checks that no mapped file changed size or modification time since it
    /// was opened.
    ///
    /// A file truncated under a memory map makes the next read of the lost
    /// pages kill the process with SIGBUS, so callers that run for a long
    /// time call this between steps. It costs one `stat` per document.
    pub fn check_unchanged(&self) -> Result<()> {
        for doc in &self.store.documents {
            let (Some(path), Some(stamp)) = (&doc.path, &doc.stamp) else {
                continue;
            };
            let now = match std::fs::metadata(path) {
                Ok(m) => FileStamp {
                    len: m.len(),
                    modified: m.modified().ok(),
                },
                // Deleting a mapped file is harmless: the mapping keeps the data.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            if now.len != stamp.len {
                return Err(Error::ContextChanged {
                    path: path.clone(),
                    what: format!("size was {} bytes, now {}", stamp.len, now.len),
                });
            }
            if now.modified != stamp.modified {
                return Err(Error::ContextChanged {
                    path: path.clone(),
                    what: "modification time changed".into(),
                });
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("len", &self.len())
            .field("documents", &self.store.documents.len())
            .finish()
    }
}
