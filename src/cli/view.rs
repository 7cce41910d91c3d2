//! `rlm view`: a trace, or a batch's trace directory, as a self-contained
//! HTML page (`rlm::view`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use rlm::view::{PageOptions, TaskSummary, Trace};

/// Options of `rlm view`.
#[derive(clap::Args)]
pub(crate) struct ViewArgs {
    /// A trace (`rlm run --trace`), or a directory of them (`rlm batch --trace-dir`).
    #[arg(value_name = "TRACE")]
    path: PathBuf,
    /// The page to write [default: the trace with .html for its extension; DIR/index.html for a directory, with one page per task beside it]
    #[arg(long, short = 'o', value_name = "FILE.html")]
    out: Option<PathBuf>,
    /// Serve the page on 127.0.0.1 instead, following the trace as it grows (Ctrl-C stops)
    #[arg(long, conflicts_with = "out")]
    serve: bool,
    /// The port --serve listens on (0 picks a free one)
    #[arg(long, default_value_t = 0, requires = "serve")]
    port: u16,
}

pub(crate) fn run(args: ViewArgs) -> anyhow::Result<ExitCode> {
    if args.serve {
        anyhow::ensure!(
            !args.path.is_dir(),
            "--serve follows one trace; give it a trace file, not a directory"
        );
        serve::serve(args.path, args.port)?;
        return Ok(ExitCode::SUCCESS);
    }
    let written = if args.path.is_dir() {
        directory(&args.path, args.out.as_deref())?
    } else {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| args.path.with_extension("html"));
        one(&args.path, &out, None)?;
        out
    };
    super::eprint_text(&format!("rlm: wrote {}", written.display()));
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of one trace to `out`.
fn one(trace_path: &Path, out: &Path, index: Option<String>) -> anyhow::Result<Trace> {
    refuse_overwrite(trace_path, out)?;
    let trace = Trace::load(trace_path)?;
    if let Some(line) = trace.torn_line {
        super::eprint_text(&format!(
            "rlm: {}: line {line} is torn (a run still writing, or stopped) and is left out",
            trace_path.display()
        ));
    }
    let title = trace_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let page = rlm::view::page(
        &trace,
        &PageOptions {
            title,
            poll: None,
            index,
        },
    );
    std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
    Ok(trace)
}

/// Writes a page per trace of `dir` and an index of them; returns the index's path.
fn directory(dir: &Path, out: Option<&Path>) -> anyhow::Result<PathBuf> {
    let index = out.map_or_else(|| dir.join("index.html"), Path::to_path_buf);
    let pages_dir = index
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let index_name = index
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "index.html".into());
    let mut tasks = Vec::new();
    for path in rlm::view::traces_in(dir)? {
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = format!("{id}.html");
        let trace = one(&path, &pages_dir.join(&name), Some(index_name.clone()))?;
        tasks.push(TaskSummary::of(&id, &name, &trace));
    }
    refuse_overwrite(dir, &index)?;
    let title = dir.display().to_string();
    std::fs::write(&index, rlm::view::index(&title, &tasks))
        .with_context(|| format!("writing {}", index.display()))?;
    Ok(index)
}

/// A page is never written over the trace it shows.
fn refuse_overwrite(trace: &Path, out: &Path) -> anyhow::Result<()> {
    let same = match (trace.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    anyhow::ensure!(
        !same && out.extension().is_none_or(|e| e != "jsonl"),
        "refusing to write the page over {}: give -o a .html file",
        out.display()
    );
    Ok(())
}

/// `rlm view --serve`: the page on 127.0.0.1, following the trace as it grows.
mod serve {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Context as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use rlm::view::{PageOptions, Trace};

    /// The most a request may send before its headers end.
    const MAX_REQUEST: usize = 8 * 1024;
    /// The most bytes of new trace one poll returns, so a 100 MB trace
    /// arrives in pieces the page can take.
    const MAX_CHUNK: u64 = 4 * 1024 * 1024;

    /// Serves until Ctrl-C.
    pub(crate) fn serve(trace: PathBuf, port: u16) -> anyhow::Result<()> {
        let runtime = super::super::runtime()?;
        runtime.block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
            let addr = listener.local_addr()?;
            let title = trace
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let page = rlm::view::page(
                &Trace::default(),
                &PageOptions {
                    title,
                    poll: Some("/events".into()),
                    index: None,
                },
            );
            let state = Arc::new((trace, page, addr.port()));
            eprintln!("rlm: serving http://{addr}/ (Ctrl-C stops)");
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let state = state.clone();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &state.0, &state.1, state.2)).await;
                        });
                    }
                }
            }
        })
    }

    /// Answers one request and closes the connection.
    async fn answer(
        mut stream: TcpStream,
        trace: &Path,
        page: &str,
        port: u16,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 || buf.len() + n > MAX_REQUEST {
                return respond(&mut stream, "400 Bad Request", "text/plain", b"bad request").await;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buf);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        // Another site's page could reach a loopback server through a name
        // that resolves here; only our own host names are answered.
        let host_ok = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .is_some_and(|(_, v)| {
                let v = v.trim();
                v == format!("127.0.0.1:{port}") || v == format!("localhost:{port}")
            });
        if !host_ok {
            return respond(&mut stream, "403 Forbidden", "text/plain", b"unknown host").await;
        }
        if method != "GET" {
            return respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                b"GET only",
            )
            .await;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        match path {
            "/" | "/index.html" => {
                respond(
                    &mut stream,
                    "200 OK",
                    "text/html; charset=utf-8",
                    page.as_bytes(),
                )
                .await
            }
            "/events" => {
                let from = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("from="))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let body = events_from(trace, from).await;
                respond(&mut stream, "200 OK", "application/json", body.as_bytes()).await
            }
            _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found").await,
        }
    }

    /// The whole lines of the trace after byte `from`, as
    /// `{"next": offset, "reset": bool, "events": [...]}`; a trace that
    /// shrank (written anew) starts again from 0 with `reset`.
    async fn events_from(trace: &Path, from: u64) -> String {
        // tokio's fs feature is not in the tree; a read of at most
        // MAX_CHUNK from a local file is brief enough for a worker thread.
        let read = || -> std::io::Result<(u64, bool, Vec<u8>)> {
            use std::io::{Read, Seek};
            let mut file = std::fs::File::open(trace)?;
            let len = file.metadata()?.len();
            let (from, reset) = if len < from { (0, true) } else { (from, false) };
            file.seek(std::io::SeekFrom::Start(from))?;
            let mut bytes = Vec::new();
            file.take(MAX_CHUNK.min(len - from))
                .read_to_end(&mut bytes)?;
            Ok((from, reset, bytes))
        };
        let Ok((from, reset, bytes)) = read() else {
            return format!("{{\"next\":{from},\"reset\":false,\"events\":[]}}");
        };
        // Only whole lines: a torn tail is read again on the next poll.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut events = Vec::new();
        for line in String::from_utf8_lossy(&bytes[..whole]).lines() {
            if serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()) {
                events.push(line.trim().to_string());
            }
        }
        format!(
            "{{\"next\":{},\"reset\":{reset},\"events\":[{}]}}",
            from + whole as u64,
            events.join(",")
        )
    }

    async fn respond(
        stream: &mut TcpStream,
        status: &str,
        kind: &str,
        body: &[u8],
    ) -> std::io::Result<()> {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.shutdown().await
    }
}
