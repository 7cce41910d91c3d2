//! The library's error type.

use std::path::PathBuf;

/// Everything the context engine can fail with.
///
/// Messages name the input that failed and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path given by the user does not exist.
    #[error(
        "no such file or directory: {} (check the path, or pass `-` to read standard input)",
        shown(.path)
    )]
    NotFound { path: PathBuf },

    /// A file or directory exists but could not be read or mapped.
    // The OS error is in the message, so it is not also a `source`.
    #[error("cannot read {}: {cause}", shown(.path))]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// A glob pattern was malformed.
    #[error("invalid glob pattern {pattern:?}: {message}")]
    Glob { pattern: String, message: String },

    /// A glob pattern or directory yielded no readable file.
    #[error("{what} matched no readable files")]
    NoFiles { what: String },

    /// A regular expression failed to compile. The message is the regex crate's.
    #[error("invalid regex {pattern:?}: {message}")]
    Regex { pattern: String, message: String },

    /// An argument was out of its domain (for example a chunk size of zero).
    #[error("{0}")]
    InvalidArgument(String),

    /// A long-running operation was stopped by its [`Interrupt`](crate::Interrupt).
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A context file changed on disk after it was opened.
    #[error("context file {} changed on disk after it was opened ({what}); re-open the context, or use snapshot mode to copy it into memory", shown(.path))]
    ContextChanged { path: PathBuf, what: String },

    /// A stream (standard input, a FIFO) went on past the loader's limit.
    #[error("{} is longer than the limit of {} for a stream; save it to a file and pass the file (files are mapped, not copied), or raise the limit (--max-stream-size)", shown(.path), human(*.limit))]
    StreamTooLarge { path: PathBuf, limit: u64 },

    /// A stream sent nothing for longer than the loader's read timeout.
    #[error("no data from {} for {seconds} s: nothing is writing to it, or the writer stalled (--read-timeout sets the limit)", shown(.path))]
    StreamStalled { path: PathBuf, seconds: f64 },

    /// A path names a device or socket: something with no end or no bytes.
    #[error("{} is a {kind}, not a file, directory or FIFO; pass `-` to read standard input, or pipe a bounded part of a device (`head -c 10M DEVICE | rlm ... -`)", shown(.path))]
    NotAFile { path: PathBuf, kind: &'static str },

    /// A compressed file that does not decompress: corrupt or truncated.
    #[error("cannot decompress {} ({format}): {message}; the file is corrupt or truncated (--no-decompress loads it as it is)", shown(.path))]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        message: String,
    },

    /// A compressed file that decompresses to more than the loader's limit.
    #[error("{} ({format}) decompresses to more than the limit of {} (--max-stream-size raises it; --no-decompress loads the file as it is)", shown(.path), human(*.limit))]
    DecompressedTooLarge {
        path: PathBuf,
        format: &'static str,
        limit: u64,
    },

    /// More large files than the system allows memory maps.
    #[error("more than {limit} files over {} each: every one needs a memory map, and this system allows {limit} for them (half of vm.max_map_count); load fewer files at once, or raise vm.max_map_count", human(crate::context::READ_MAX as u64))]
    TooManyMaps { limit: usize },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A path as one line: control characters in file names are escaped, so a
/// name cannot forge a line of a message.
fn shown(path: &std::path::Path) -> String {
    crate::escape::line(&path.to_string_lossy()).into_owned()
}

fn human(bytes: u64) -> String {
    crate::stats::human_bytes(usize::try_from(bytes).unwrap_or(usize::MAX))
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Error {
        let path = path.into();
        if cause.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, cause }
        }
    }
}
