//! Summary statistics of a context, as printed by `rlm stats`.

use serde::Serialize;

use crate::context::{group_skipped, Context, SkipKind};
use crate::error::Result;

/// Rough bytes per token for English text with GPT-style tokenizers.
pub const BYTES_PER_TOKEN: usize = 4;

/// Estimated token count of `bytes` bytes of text.
pub fn estimate_tokens(bytes: usize) -> usize {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// Size and shape of a context.
#[derive(Debug, Clone, Serialize)]
pub struct ContextStats {
    /// Total bytes, document headers included.
    pub bytes: usize,
    /// Estimated tokens (bytes / 4).
    pub estimated_tokens: usize,
    /// Lines in the whole context.
    pub lines: usize,
    /// Number of documents.
    pub documents: usize,
    /// The largest documents, biggest first.
    pub largest: Vec<DocumentStats>,
    /// Files passed over while loading, with the reason, in load order.
    pub skipped: Vec<SkippedFile>,
    /// The same files counted by kind of reason, one entry per kind.
    pub skipped_by_reason: Vec<SkippedReason>,
}

/// How many files were skipped for one kind of reason.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedReason {
    /// The kind, e.g. `binary` or `corrupt`.
    pub reason: SkipKind,
    /// What the kind means, as the text report says it.
    pub description: String,
    /// How many files.
    pub count: usize,
    /// The first such file's full reason, as an example.
    pub example: String,
}

/// Size of one document.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentStats {
    pub name: String,
    pub bytes: usize,
    pub lines: usize,
}

/// A file left out of the context.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub path: String,
    /// The kind of reason, as in [`SkippedReason::reason`].
    pub kind: SkipKind,
    pub reason: String,
}

impl ContextStats {
    /// Computes statistics, listing the `top` largest documents.
    ///
    /// Cost: one parallel newline pass over the context (the line index,
    /// which later line operations reuse).
    pub fn compute(ctx: &Context, top: usize) -> Result<ContextStats> {
        let text = ctx.text();
        let mut docs: Vec<(usize, crate::Text)> = ctx.documents().into_iter().enumerate().collect();
        docs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let largest = docs
            .into_iter()
            .take(top)
            .map(|(_, d)| DocumentStats {
                name: d.name().to_string(),
                bytes: d.len(),
                lines: d.line_count(),
            })
            .collect();
        Ok(ContextStats {
            bytes: ctx.len(),
            estimated_tokens: estimate_tokens(ctx.len()),
            lines: text.line_count(),
            documents: ctx.document_info().len(),
            largest,
            skipped: ctx
                .skipped()
                .iter()
                .map(|s| SkippedFile {
                    path: s.path.display().to_string(),
                    kind: s.kind,
                    reason: s.reason.clone(),
                })
                .collect(),
            skipped_by_reason: group_skipped(ctx.skipped())
                .into_iter()
                .map(|g| SkippedReason {
                    reason: g.kind,
                    description: g.kind.describe().to_string(),
                    count: g.count,
                    example: example(g.first),
                })
                .collect(),
        })
    }

    /// A human-readable report, with skipped files counted by reason, one
    /// line each, and listed one by one too when `list_skipped`. Names,
    /// paths and reasons come from the file system, so their control
    /// characters are escaped ([`crate::escape::line()`]): one entry is
    /// one line.
    pub fn render(&self, list_skipped: bool) -> String {
        use crate::escape::line;
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "size:       {} bytes ({})",
            self.bytes,
            human_bytes(self.bytes)
        );
        let _ = writeln!(
            out,
            "tokens:     ~{} (estimated, bytes/{BYTES_PER_TOKEN})",
            self.estimated_tokens
        );
        let _ = writeln!(out, "lines:      {}", self.lines);
        let _ = writeln!(out, "documents:  {}", self.documents);
        if !self.largest.is_empty() {
            let _ = writeln!(out, "largest documents:");
            for d in &self.largest {
                let _ = writeln!(
                    out,
                    "  {:>10}  {:>9} lines  {}",
                    human_bytes(d.bytes),
                    d.lines,
                    line(&d.name)
                );
            }
        }
        if !self.skipped.is_empty() {
            let hint = if list_skipped {
                ""
            } else {
                " (--list-skipped lists them)"
            };
            let _ = writeln!(out, "skipped {}{hint}:", files(self.skipped.len()));
            for r in &self.skipped_by_reason {
                let _ = writeln!(
                    out,
                    "  {:>9}  {}, e.g. {}",
                    r.count,
                    r.description,
                    line(&r.example)
                );
            }
            if list_skipped {
                for s in &self.skipped {
                    let _ = writeln!(out, "  {}: {}", line(&s.path), line(&s.reason));
                }
            }
        }
        out
    }
}

/// One line per kind of reason files were skipped for, for a command's
/// standard error: `skipped 3 files: binary: ..., e.g. a.bin`.
pub fn skipped_notes(ctx: &Context) -> Vec<String> {
    group_skipped(ctx.skipped())
        .into_iter()
        .map(|g| {
            format!(
                "skipped {}: {}, e.g. {}",
                files(g.count),
                g.kind.describe(),
                example(g.first)
            )
        })
        .collect()
}

/// `1 file`, `2 files`.
fn files(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// A skipped file as an example of its kind: the path, and the reason
/// when the reason says more than the kind (an error message).
fn example(s: &crate::context::Skipped) -> String {
    let path = s.path.display().to_string();
    match s.kind {
        SkipKind::Binary | SkipKind::NotAFile => path,
        // These reasons name the path themselves.
        _ if s.reason.contains(&path) => s.reason.clone(),
        _ => format!("{path}: {}", s.reason),
    }
}

/// `1536` → `"1.5 KiB"`.
pub fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
