//! The trace viewer: a JSONL trace (`docs/trace.md`) as one self-contained
//! HTML page, and a batch's trace directory as an index of its tasks.
//!
//! [`page`] reads a trace, checks every line is JSON and embeds the lines,
//! as they are, in a `<script type="application/json">` block beside the
//! page's own CSS and JavaScript (`page.css`, `page.js`): no network, no
//! CDN, one file to mail or archive. Every `<` of the data is written as
//! `\u003c`, which JSON reads back as the same character, so no text of a
//! trace (a cell that printed `</script>`) can end the block or open a tag.
//!
//! The page builds the run tree (run, turns, cells, sub-calls, child runs
//! under the cell that started them) from the events in one pass, but
//! creates the DOM of a node only when it is expanded, and shows long
//! outputs a page at a time: a trace of 100 MB costs the browser its JSON
//! parse, not a million elements.
//!
//! A torn last line (a run still writing, or killed) is left out and the
//! page says so; a line that is not JSON anywhere else is an error naming
//! it, since the trace is then not one `rlm` wrote.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Why a trace or a trace directory cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The file or directory could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line before the last is not JSON.
    #[error(
        "{path}: line {line} is not JSON ({message}); is it a trace written by `rlm run --trace`?"
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A directory holds no `.jsonl` trace.
    #[error("{path} holds no .jsonl traces (rlm batch --trace-dir writes one per task)")]
    NoTraces { path: PathBuf },
}

/// A trace's lines, checked to be JSON.
#[derive(Debug, Default)]
pub struct Trace {
    /// The whole lines, each one JSON object as the file holds it.
    lines: Vec<String>,
    /// The line number of a torn last line that was left out.
    pub torn_line: Option<usize>,
}

impl Trace {
    /// Reads `path`, leaving out a torn last line.
    pub fn load(path: &Path) -> Result<Trace, ViewError> {
        let read = |source| ViewError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        Self::from_reader(path, BufReader::new(file))
    }

    /// Reads the lines of `reader`; `path` names it in errors.
    pub fn from_reader(path: &Path, reader: impl BufRead) -> Result<Trace, ViewError> {
        let mut trace = Trace::default();
        let mut bad: Option<(usize, String)> = None;
        for (n, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(|source| ViewError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            if let Some((line, message)) = bad.take() {
                // A bad line with more after it is not a torn tail.
                return Err(ViewError::Malformed {
                    path: path.to_path_buf(),
                    line,
                    message,
                });
            }
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(_)) => trace.lines.push(text.into_owned()),
                Ok(_) => bad = Some((n + 1, "not a JSON object".into())),
                Err(e) => bad = Some((n + 1, e.to_string())),
            }
        }
        trace.torn_line = bad.map(|(line, _)| line);
        Ok(trace)
    }

    /// Events in the trace.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the trace holds no event.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The events as one JSON array, safe inside a `<script>` block.
    fn json_array(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len() + 1).sum());
        out.push('[');
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(line.trim());
        }
        out.push(']');
        script_safe(&out)
    }
}

/// JSON text that can sit inside `<script type="application/json">`: `<`
/// only occurs inside JSON strings, where `\u003c` means the same.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// Text for an HTML text node or attribute.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the page shows besides the events.
#[derive(Debug, Default, Clone)]
pub struct PageOptions {
    /// The page's title (the trace's file name).
    pub title: String,
    /// Where the page asks for new events (watch mode), if anywhere.
    pub poll: Option<String>,
    /// A link back to the batch's index, if the page is part of one.
    pub index: Option<String>,
}

/// The HTML page of a trace.
pub fn page(trace: &Trace, options: &PageOptions) -> String {
    let meta = serde_json::json!({
        "title": options.title,
        "poll": options.poll,
        "index": options.index,
        "torn_line": trace.torn_line,
        "events": trace.len(),
    });
    shell(
        &options.title,
        &format!(
            "<script type=\"application/json\" id=\"rlm-meta\">{}</script>\n\
             <script type=\"application/json\" id=\"rlm-trace\">{}</script>",
            script_safe(&meta.to_string()),
            trace.json_array()
        ),
    )
}

/// The page around `data`: the style, the data blocks, the script.
fn shell(title: &str, data: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'\">\n\
         <title>{}</title>\n<style>{CSS}</style></head>\n<body>\n<div id=\"app\"></div>\n{data}\n<script>{}</script>\n</body></html>\n",
        html_escape(title),
        JS.replace("</", "<\\/")
    )
}

/// One task of a batch's trace directory, as its index shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskSummary {
    /// The trace's file name without `.jsonl` (the task id, made safe).
    pub id: String,
    /// The page of its run, relative to the index.
    pub href: String,
    /// The `final` event's status, or `running` when it has none yet.
    pub status: String,
    pub turns: u64,
    pub cost_usd: Option<f64>,
    pub wall_s: Option<f64>,
    /// The trace's events.
    pub events: usize,
}

impl TaskSummary {
    /// The summary of a task from its trace; `href` is its page.
    pub fn of(id: &str, href: &str, trace: &Trace) -> TaskSummary {
        let last = trace
            .lines
            .iter()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "final" && e["run"] == "0");
        let turns = trace
            .lines
            .iter()
            .filter(|l| l.contains("\"root_response\""))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == "root_response" && e["run"] == "0")
            .count() as u64;
        TaskSummary {
            id: id.to_string(),
            href: href.to_string(),
            status: last
                .as_ref()
                .and_then(|e| e["status"].as_str())
                .unwrap_or("running")
                .to_string(),
            turns: last
                .as_ref()
                .and_then(|e| e["iterations"].as_u64())
                .unwrap_or(turns),
            cost_usd: last.as_ref().and_then(|e| e["cost_usd"].as_f64()),
            wall_s: last.as_ref().and_then(|e| e["wall_s"].as_f64()),
            events: trace.len(),
        }
    }
}

/// The `.jsonl` traces of a directory, sorted by name.
pub fn traces_in(dir: &Path) -> Result<Vec<PathBuf>, ViewError> {
    let read = |source| ViewError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(ViewError::NoTraces {
            path: dir.to_path_buf(),
        });
    }
    Ok(paths)
}

/// The index page of a batch: one sortable row per task.
pub fn index(title: &str, tasks: &[TaskSummary]) -> String {
    let data = serde_json::to_string(tasks).unwrap_or_else(|_| "[]".into());
    let meta = serde_json::json!({"title": title, "mode": "index"});
    shell(
        title,
        &format!(
            "<script type=\"application/json\" id=\"rlm-meta\">{}</script>\n\
             <script type=\"application/json\" id=\"rlm-index\">{}</script>",
            script_safe(&meta.to_string()),
            script_safe(&data)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(text: &str) -> Result<Trace, ViewError> {
        Trace::from_reader(Path::new("t.jsonl"), text.as_bytes())
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_named() {
        let t = trace("{\"event\":\"run_start\"}\n{\"event\":\"ce").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.torn_line, Some(2));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let e = trace("{\"a\":1}\nnot json\n{\"b\":2}\n").unwrap_err();
        assert!(e.to_string().contains("line 2 is not JSON"), "{e}");
    }

    #[test]
    fn no_text_of_the_data_can_close_the_script_block() {
        let t = trace("{\"output\":\"</script><script>alert(1)</script><!--\"}\n").unwrap();
        let html = page(&t, &PageOptions::default());
        let data = html.split("id=\"rlm-trace\">").nth(1).unwrap();
        let data = data.split("</script>").next().unwrap();
        assert!(!data.contains('<'), "{data}");
        let back: Value = serde_json::from_str(data).unwrap();
        assert_eq!(back[0]["output"], "</script><script>alert(1)</script><!--");
    }

    #[test]
    fn the_page_fetches_nothing_from_anywhere() {
        let html = page(&Trace::default(), &PageOptions::default());
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains(" src=") && !html.contains("<link"));
    }
}
