//! Summary statistics of a context, as printed by `rlm stats`.

use serde::Serialize;

use crate::context::Context;
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
    /// Files passed over while loading, with the reason.
    pub skipped: Vec<SkippedFile>,
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
                    reason: s.reason.clone(),
                })
                .collect(),
        })
    }

    /// A human-readable report. Names, paths and reasons come from the
    /// file system, so their control characters are escaped
    /// ([`crate::escape::line()`]): one entry is one line.
    pub fn render(&self) -> String {
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
            let _ = writeln!(out, "skipped {} file(s):", self.skipped.len());
            for s in &self.skipped {
                let _ = writeln!(out, "  {}: {}", line(&s.path), line(&s.reason));
            }
        }
        out
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
