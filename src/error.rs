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
    #[error("cannot read {}: {source}", shown(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A path as one line: control characters in file names are escaped, so a
/// name cannot forge a line of a message.
fn shown(path: &std::path::Path) -> String {
    crate::escape::line(&path.to_string_lossy()).into_owned()
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, source }
        }
    }
}
