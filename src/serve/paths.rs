//! Confining the paths a client names to one directory, `--root`.
//!
//! A client of `rlm mcp` or `rlm serve` is another program, often a model,
//! so every path it names is checked before anything is opened:
//!
//! * `..` is refused as a component, wherever it is, even when the path
//!   would come back inside: a refusal that names the rule is clearer to a
//!   model than one that depends on where the path happens to land.
//! * The path is resolved against the root (a relative one) and then
//!   canonicalized, which follows every symlink; the result must still be
//!   under the canonical root. A symlink inside the root that points out of
//!   it is therefore refused, as is an absolute path elsewhere.
//! * Only regular files and directories are opened: a FIFO or a device
//!   under the root could block a loader or never end.
//! * Directory walks never follow symlinks ([`crate::ContextBuilder`]), so
//!   what a walk of a confined directory finds is under it too.
//!
//! What this cannot see: a hard link to a file outside the root is, to the
//! file system, a file inside it. A file swapped for a symlink between the
//! check and the open is a race the check loses; the root should be a
//! directory the client cannot write to by other means.

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The root itself cannot be used.
    #[error("the root {root} cannot be used: {cause}")]
    Root {
        root: PathBuf,
        cause: std::io::Error,
    },
    #[error("the root {0} is not a directory")]
    RootNotADirectory(PathBuf),
    #[error("an empty path names nothing: name a file or directory under the root {root}")]
    Empty { root: PathBuf },
    #[error("{path:?} is refused: `..` may not appear in a path; name it from the root {root}")]
    ParentComponent { path: String, root: PathBuf },
    #[error("{path:?} is refused: it is outside the root {root}")]
    Outside { path: String, root: PathBuf },
    #[error(
        "{path:?} is refused: it resolves (through a symlink) to a place outside the root {root}"
    )]
    SymlinkOut { path: String, root: PathBuf },
    #[error("{path:?} cannot be opened: {cause}")]
    Missing { path: String, cause: std::io::Error },
    #[error("{path:?} is refused: only regular files and directories are read")]
    NotAFile { path: String },
}

/// A directory that every path a client names must stay inside.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The root at `dir`, canonicalized (it must exist and be a directory).
    pub fn new(dir: &Path) -> Result<Root, PathError> {
        let canonical = dir.canonicalize().map_err(|cause| PathError::Root {
            root: dir.to_path_buf(),
            cause,
        })?;
        if !canonical.is_dir() {
            return Err(PathError::RootNotADirectory(canonical));
        }
        Ok(Root { dir: canonical })
    }

    /// The canonical directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The canonical path of `path` (relative to the root, or absolute),
    /// if it is a file or directory under the root. See the module docs.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, PathError> {
        let shown = || path.to_string();
        if path.trim().is_empty() {
            return Err(PathError::Empty {
                root: self.dir.clone(),
            });
        }
        let given = Path::new(path);
        if given.components().any(|c| c == Component::ParentDir) {
            return Err(PathError::ParentComponent {
                path: shown(),
                root: self.dir.clone(),
            });
        }
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.dir.join(given)
        };
        // Absolute paths are compared as written first: one elsewhere is
        // refused as outside, without touching it.
        if given.is_absolute() && !lexically_under(&joined, &self.dir) {
            return Err(PathError::Outside {
                path: shown(),
                root: self.dir.clone(),
            });
        }
        let canonical = joined.canonicalize().map_err(|cause| PathError::Missing {
            path: shown(),
            cause,
        })?;
        if !canonical.starts_with(&self.dir) {
            return Err(PathError::SymlinkOut {
                path: shown(),
                root: self.dir.clone(),
            });
        }
        let meta = std::fs::metadata(&canonical).map_err(|cause| PathError::Missing {
            path: shown(),
            cause,
        })?;
        if !(meta.is_file() || meta.is_dir()) {
            return Err(PathError::NotAFile { path: shown() });
        }
        Ok(canonical)
    }

    /// [`Root::resolve`] for each path, stopping at the first refusal.
    pub fn resolve_all(&self, paths: &[String]) -> Result<Vec<PathBuf>, PathError> {
        paths.iter().map(|p| self.resolve(p)).collect()
    }
}

/// Whether `path`, as written (no `..`, checked before), lies under `dir`.
/// An absolute path written through a symlinked spelling of the root is
/// accepted here and judged by its canonical form afterwards.
fn lexically_under(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
        || path
            .ancestors()
            .filter_map(|a| a.canonicalize().ok())
            .next()
            .is_some_and(|c| c.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/sub")).unwrap();
        std::fs::write(dir.path().join("root/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("root/sub/b.txt"), "b").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        let root = Root::new(&dir.path().join("root")).unwrap();
        (dir, root)
    }

    #[test]
    fn paths_under_the_root_resolve_relative_or_absolute() {
        let (_dir, root) = tree();
        assert_eq!(root.resolve("a.txt").unwrap(), root.dir().join("a.txt"));
        assert_eq!(root.resolve("sub").unwrap(), root.dir().join("sub"));
        let absolute = root.dir().join("sub/b.txt");
        assert_eq!(root.resolve(absolute.to_str().unwrap()).unwrap(), absolute);
    }

    #[test]
    fn parent_components_and_outside_paths_are_refused_before_anything_is_opened() {
        let (dir, root) = tree();
        assert!(matches!(
            root.resolve("../secret.txt"),
            Err(PathError::ParentComponent { .. })
        ));
        assert!(matches!(
            root.resolve("sub/../a.txt"),
            Err(PathError::ParentComponent { .. })
        ));
        let outside = dir.path().join("secret.txt");
        assert!(matches!(
            root.resolve(outside.to_str().unwrap()),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(
            root.resolve("/etc/passwd"),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(root.resolve(""), Err(PathError::Empty { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_root_is_refused_and_one_within_it_is_followed() {
        let (dir, root) = tree();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.dir().join("leak")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.dir().join("up")).unwrap();
        std::os::unix::fs::symlink(root.dir().join("a.txt"), root.dir().join("alias")).unwrap();
        assert!(matches!(
            root.resolve("leak"),
            Err(PathError::SymlinkOut { .. })
        ));
        assert!(matches!(
            root.resolve("up/secret.txt"),
            Err(PathError::SymlinkOut { .. })
        ));
        assert_eq!(root.resolve("alias").unwrap(), root.dir().join("a.txt"));
    }

    #[test]
    fn a_missing_path_says_it_cannot_be_opened() {
        let (_dir, root) = tree();
        let e = root.resolve("nope.txt").unwrap_err();
        assert!(
            e.to_string().contains("\"nope.txt\" cannot be opened"),
            "{e}"
        );
    }
}
