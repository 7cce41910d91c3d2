//! Context sessions: a loaded context and a persistent Rhai session over
//! it, kept between a client's calls (`context_open`, `rhai_run`,
//! `context_search`, `context_close` of `rlm mcp`).
//!
//! What they hold is bounded, and the bounds are [`SessionLimits`]:
//!
//! * at most `max_sessions` are open at once; opening one more is refused
//!   with a message that says how to free one;
//! * each session's script values are held to `limits.max_memory_bytes`
//!   (counted by the binary's allocator, as in `rlm run`), so all script
//!   state together stays under `max_sessions × max_memory_bytes`;
//! * a context is memory-mapped, so its files cost page cache, not heap,
//!   except files of up to 64 KiB (read) and compressed ones (decompressed
//!   into memory or an unlinked temporary file, each at most the loader's
//!   `max_stream_bytes`);
//! * a session unused for `idle` is closed by [`Sessions::expire`] (called
//!   on every access and by the server's sweep), which frees all of it.
//!
//! A session runs one cell at a time: a second `rhai_run` on the same id
//! waits for the first. Different sessions run side by side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dsl::{CellOutcome, Limits, Session, SessionBuilder};
use crate::{Context, GrepOptions};

/// How many sessions, how long they live unused, and the limits of each.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Sessions open at once.
    pub max_sessions: usize,
    /// A session unused this long is closed.
    pub idle: Duration,
    /// Every cell's sandbox limits, `max_memory_bytes` included.
    pub limits: Limits,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 8,
            idle: Duration::from_secs(30 * 60),
            limits: Limits {
                max_memory_bytes: 512 << 20,
                cell_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
        }
    }
}

/// Why a session call failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no open context has id {id:?}: it was closed, or expired after {idle_s} s unused; open it again with context_open")]
    Unknown { id: String, idle_s: u64 },
    #[error("{open} contexts are open, the most allowed: close one with context_close (unused ones close after {idle_s} s)")]
    Full { open: usize, idle_s: u64 },
    #[error("the search failed: {0}")]
    Search(#[from] crate::Error),
}

/// What `context_open` says about a context it opened.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub documents: usize,
    pub bytes: usize,
    pub lines: usize,
    /// The first documents' names and sizes, at most [`LISTED_DOCUMENTS`].
    pub listed: Vec<DocumentSummary>,
    /// Files passed over while loading, by reason.
    pub skipped: Vec<String>,
}

/// One document of a [`Summary`].
#[derive(Debug, Clone, Serialize)]
pub struct DocumentSummary {
    pub name: String,
    pub bytes: usize,
}

/// Documents named in a [`Summary`]; the rest are counted.
pub const LISTED_DOCUMENTS: usize = 50;

/// Longest line text returned by a search, in characters; longer lines
/// are cut (the script can read them whole with `context.line(n)`).
pub const SEARCH_LINE_CHARS: usize = 500;

/// Most hits a search returns, whatever it asks for.
pub const MAX_SEARCH_HITS: usize = 1000;

/// What `context_search` asks for.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    pub case_insensitive: bool,
    /// Hits returned at most (default 100, at most [`MAX_SEARCH_HITS`]).
    pub max: Option<usize>,
    /// Lines of context before and after each hit (at most 20 each).
    pub before: usize,
    pub after: usize,
}

/// One line a search found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// The document it is in.
    pub document: String,
    /// 1-based line in the whole context, as `context.line(n)` reads it.
    pub line: usize,
    /// Byte offset of the line in the whole context.
    pub offset: usize,
    /// The line, cut to [`SEARCH_LINE_CHARS`].
    pub text: String,
    /// The hit with its context lines, when some were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

struct Entry {
    context: Context,
    session: Arc<Mutex<Session>>,
    last_used: Instant,
}

/// The open sessions. See the module docs.
pub struct Sessions {
    limits: SessionLimits,
    open: Mutex<HashMap<String, Entry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            limits,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The limits sessions are held to.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the sessions unused for longer than `idle`; returns how many.
    pub fn expire(&self) -> usize {
        let idle = self.limits.idle;
        let mut open = lock(&self.open);
        let before = open.len();
        open.retain(|_, e| e.last_used.elapsed() < idle);
        before - open.len()
    }

    /// Opens a session over `context`: its id and summary.
    pub fn open(&self, context: Context) -> Result<(String, Summary), SessionError> {
        self.expire();
        let summary = summarize(&context);
        let session = SessionBuilder::new()
            .limits(self.limits.limits.clone())
            .extend(crate::driver::without_root_model)
            .build(&context);
        let mut open = lock(&self.open);
        if open.len() >= self.limits.max_sessions {
            return Err(SessionError::Full {
                open: open.len(),
                idle_s: self.limits.idle.as_secs(),
            });
        }
        let id = loop {
            let id = format!("ctx-{:016x}", fastrand::u64(..));
            if !open.contains_key(&id) {
                break id;
            }
        };
        open.insert(
            id.clone(),
            Entry {
                context,
                session: Arc::new(Mutex::new(session)),
                last_used: Instant::now(),
            },
        );
        Ok((id, summary))
    }

    /// Closes a session; whether it was open.
    pub fn close(&self, id: &str) -> bool {
        lock(&self.open).remove(id).is_some()
    }

    /// Runs one cell in the session `id`, blocking until it ends (within
    /// its limits). Call it off the async runtime's workers.
    pub fn run(&self, id: &str, code: &str) -> Result<CellOutcome, SessionError> {
        let session = self.touch(id)?.1;
        let mut session = lock(&session);
        let outcome = session.run_cell(code);
        drop(session);
        // The cell's time counts as use: a long cell does not expire its session.
        self.touch(id).ok();
        Ok(outcome)
    }

    /// Searches the context of session `id` line by line for a regex.
    pub fn search(
        &self,
        id: &str,
        pattern: &str,
        options: &SearchOptions,
    ) -> Result<Vec<SearchHit>, SessionError> {
        let context = self.touch(id)?.0;
        let grep = GrepOptions {
            before: options.before.min(20),
            after: options.after.min(20),
            max: Some(options.max.unwrap_or(100).clamp(1, MAX_SEARCH_HITS)),
            case_insensitive: options.case_insensitive,
        };
        let with_context = grep.before > 0 || grep.after > 0;
        let hits = context.text().grep(pattern, &grep)?;
        Ok(hits
            .into_iter()
            .map(|h| SearchHit {
                document: h.text.name().to_string(),
                line: h.line,
                offset: h.start,
                text: cut(&h.text.to_str_lossy(), SEARCH_LINE_CHARS),
                context: with_context
                    .then(|| cut(&h.context.to_str_lossy(), SEARCH_LINE_CHARS * 8)),
            })
            .collect())
    }

    /// The context and session of `id`, marked used now.
    fn touch(&self, id: &str) -> Result<(Context, Arc<Mutex<Session>>), SessionError> {
        self.expire();
        let mut open = lock(&self.open);
        let entry = open.get_mut(id).ok_or_else(|| SessionError::Unknown {
            id: id.to_string(),
            idle_s: self.limits.idle.as_secs(),
        })?;
        entry.last_used = Instant::now();
        Ok((entry.context.clone(), entry.session.clone()))
    }
}

/// `text` cut to `max` characters, with a note of what was left out.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!(
            "{}… ({} more characters)",
            &text[..at],
            text[at..].chars().count()
        ),
    }
}

fn summarize(context: &Context) -> Summary {
    let docs = context.document_info();
    Summary {
        documents: docs.len(),
        bytes: context.len(),
        lines: context.text().line_count(),
        listed: docs
            .iter()
            .take(LISTED_DOCUMENTS)
            .map(|d| DocumentSummary {
                name: d.name.clone(),
                bytes: d.len(),
            })
            .collect(),
        skipped: crate::stats::skipped_notes(context),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::from_documents([
            ("a.log".to_string(), b"ok\nERROR disk\nok\n".to_vec()),
            ("b.log".to_string(), b"error net\n".to_vec()),
        ])
    }

    #[test]
    fn a_session_keeps_its_variables_between_cells_until_it_is_closed() {
        let sessions = Sessions::new(SessionLimits::default());
        let (id, summary) = sessions.open(ctx()).unwrap();
        assert_eq!(summary.documents, 2);
        sessions.run(&id, "let n = documents.len();").unwrap();
        let out = sessions.run(&id, "print(n * 10);").unwrap();
        assert_eq!(out.output, "20\n");
        assert!(sessions.close(&id));
        assert!(matches!(
            sessions.run(&id, "print(1);"),
            Err(SessionError::Unknown { .. })
        ));
    }

    #[test]
    fn searches_name_the_document_and_the_line_a_script_would_read() {
        let sessions = Sessions::new(SessionLimits::default());
        let (id, _) = sessions.open(ctx()).unwrap();
        let opts = SearchOptions {
            case_insensitive: true,
            ..Default::default()
        };
        let hits = sessions.search(&id, "error", &opts).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].document, "a.log");
        assert_eq!(hits[1].document, "b.log");
        let out = sessions
            .run(&id, &format!("print(context.line({}));", hits[1].line))
            .unwrap();
        assert_eq!(out.output, "error net\n");
    }

    #[test]
    fn sessions_beyond_the_bound_are_refused_and_idle_ones_expire() {
        let sessions = Sessions::new(SessionLimits {
            max_sessions: 1,
            idle: Duration::from_millis(0),
            ..SessionLimits::default()
        });
        sessions.open(ctx()).unwrap();
        // Idle for zero time: the first is gone when the second opens.
        let (second, _) = sessions.open(ctx()).unwrap();
        assert_eq!(sessions.len(), 1);
        assert!(matches!(
            sessions.run(&second, "1"),
            Err(SessionError::Unknown { .. })
        ));
        let kept = Sessions::new(SessionLimits {
            max_sessions: 1,
            ..SessionLimits::default()
        });
        kept.open(ctx()).unwrap();
        let e = kept.open(ctx()).unwrap_err();
        assert!(
            e.to_string().contains("close one with context_close"),
            "{e}"
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        assert_eq!(cut("ééé", 2), "éé… (1 more characters)");
        assert_eq!(cut("ab", 2), "ab");
    }
}
