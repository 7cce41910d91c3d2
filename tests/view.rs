//! `rlm view` through the binary: the page is self-contained, holds the
//! trace, keeps hostile text inert, survives torn and broken traces, and
//! indexes a batch's trace directory.

mod common;
mod view_support;

use std::path::Path;

use rlm::testing::{MockServer, Reply};

fn view(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::output(common::rlm(dir).arg("view").args(args))
}

/// The embedded events of a page, read back as JSON.
fn embedded(html: &str) -> Vec<serde_json::Value> {
    let data = html
        .split("id=\"rlm-trace\">")
        .nth(1)
        .and_then(|d| d.split("</script>").next())
        .expect("the page embeds the trace");
    serde_json::from_str(data).expect("the embedded trace is JSON")
}

/// The page without its data blocks: the markup, style and script.
fn markup(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<script type=\"application/json\"") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("</script>").expect("a data block ends") + i;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn assert_self_contained(html: &str) {
    let html = markup(html);
    for bad in [
        "http://", "https://", "<link", " src=", "<iframe", "@import", "url(",
    ] {
        assert!(!html.contains(bad), "the page holds {bad:?}");
    }
}

#[test]
fn the_page_of_a_recursive_run_is_self_contained_and_holds_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = view_support::server();
    let trace = view_support::record(dir.path(), &server);
    let (code, _, err) = view(dir.path(), &[trace.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert_self_contained(&html);
    let events = common::jsonl(&trace);
    assert_eq!(embedded(&html), events);
    // Three runs deep: the grandchild is there.
    assert!(events
        .iter()
        .any(|e| e["run"] == "0.1.1" && e["depth"] == 2));
}

#[test]
fn a_cell_that_prints_html_stays_text_in_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = view_support::server();
    let trace = view_support::record(dir.path(), &server);
    let out = dir.path().join("page.html");
    let (code, _, err) = view(
        dir.path(),
        &[trace.to_str().unwrap(), "-o", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        !markup(&html).contains("pwned"),
        "the printed HTML got into the page as markup"
    );
    assert!(!html.contains("<script>window") && !html.contains("<img"));
    assert_eq!(
        html.matches("<script").count(),
        3,
        "only the page's own blocks"
    );
    let cell = embedded(&html)
        .into_iter()
        .find(|e| e["event"] == "cell" && e["run"] == "0")
        .unwrap();
    assert!(cell["output"]
        .as_str()
        .unwrap()
        .contains(view_support::HOSTILE));
}

#[test]
fn a_torn_last_line_is_left_out_and_a_broken_line_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let torn = dir.path().join("torn.jsonl");
    std::fs::write(
        &torn,
        "{\"event\":\"run_start\",\"run\":\"0\",\"depth\":0,\"t\":0,\"query\":\"q\"}\n{\"event\":\"root_resp",
    )
    .unwrap();
    let (code, _, err) = view(dir.path(), &[torn.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("line 2 is torn"), "{err}");
    let html = std::fs::read_to_string(dir.path().join("torn.html")).unwrap();
    assert_eq!(embedded(&html).len(), 1);

    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        "{\"event\":\"run_start\"}\n<html>\n{\"event\":\"final\"}\n",
    )
    .unwrap();
    let (code, _, err) = view(dir.path(), &[broken.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2 is not JSON"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.path().join("broken.html").exists());
}

#[test]
fn the_page_is_never_written_over_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let text = "{\"event\":\"run_start\",\"run\":\"0\",\"depth\":0,\"t\":0}\n";
    std::fs::write(&trace, text).unwrap();
    let (code, _, err) = view(dir.path(), &["t.jsonl", "-o", "./t.jsonl"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refusing to write the page over"), "{err}");
    assert_eq!(std::fs::read_to_string(&trace).unwrap(), text);
}

#[test]
fn a_batch_trace_directory_gets_an_index_of_its_tasks_each_linking_to_its_run() {
    let server = MockServer::start(|req| {
        if req.is_root_turn() {
            Reply::openai_text(
                "```rhai\nsubmit(llm_query(`lines: ${context.line_count()}`));\n```",
                100,
                20,
            )
        } else {
            Reply::openai_text("some lines", 10, 2)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = String::new();
    for id in ["alpha", "beta", "gamma"] {
        tasks.push_str(
            &serde_json::json!({"id": id, "query": "How many lines?", "context_text": "a\nb\n"})
                .to_string(),
        );
        tasks.push('\n');
    }
    std::fs::write(dir.path().join("tasks.jsonl"), tasks).unwrap();
    let (code, _, err) = common::output(
        common::rlm(dir.path())
            .args([
                "batch",
                "tasks.jsonl",
                "--out",
                "out.jsonl",
                "--quiet",
                "--trace-dir",
                "traces",
            ])
            .args(common::loopback_models(&server)),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = view(dir.path(), &["traces"]);
    assert_eq!(code, 0, "{err}");
    let index = std::fs::read_to_string(dir.path().join("traces/index.html")).unwrap();
    assert_self_contained(&index);
    let data = index
        .split("id=\"rlm-index\">")
        .nth(1)
        .and_then(|d| d.split("</script>").next())
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(data).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alpha", "beta", "gamma"]);
    for row in &rows {
        assert_eq!(row["status"], "submitted");
        assert_eq!(row["turns"], 1);
        assert!(row["cost_usd"].as_f64().unwrap() > 0.0);
        let page = dir
            .path()
            .join("traces")
            .join(row["href"].as_str().unwrap());
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            html.contains("index.html"),
            "the page links back to the index"
        );
        assert!(!embedded(&html).is_empty());
    }
}

#[test]
fn the_costs_of_a_runs_calls_add_up_to_its_total() {
    let dir = tempfile::tempdir().unwrap();
    let server = view_support::server();
    let trace = view_support::record(dir.path(), &server);
    let events = common::jsonl(&trace);
    let calls: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "root_response" || e["event"] == "sub_call")
        .collect();
    assert_eq!(calls.len(), 4, "three root turns and a sub-call");
    let sum: f64 = calls.iter().map(|e| e["cost_usd"].as_f64().unwrap()).sum();
    let total = events.iter().find(|e| e["event"] == "final").unwrap()["cost_usd"]
        .as_f64()
        .unwrap();
    assert!(sum > 0.0 && (sum - total).abs() < 1e-12, "{sum} vs {total}");
}

/// Sends `request` to the server and returns its whole response.
fn ask(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A server that refuses a long request may close before reading it all.
    let _ = s.write_all(request.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn serve_answers_only_gets_of_its_own_paths_for_its_own_host_and_returns_new_whole_lines() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    std::fs::write(
        &trace,
        "{\"event\":\"run_start\",\"run\":\"0\",\"depth\":0,\"t\":0}\n{\"event\":\"root_resp",
    )
    .unwrap();
    let mut child = common::rlm(dir.path())
        .args(["view", "--serve", "t.jsonl"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let page = ask(port, &format!("GET / HTTP/1.1\r\n{host}\r\n"));
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("id=\"rlm-trace\""),
        "{page}"
    );
    let events = ask(port, &format!("GET /events?from=0 HTTP/1.1\r\n{host}\r\n"));
    let body: serde_json::Value =
        serde_json::from_str(events.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    // The torn line is not served until it is whole.
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["next"], 48);
    let post = ask(port, &format!("POST / HTTP/1.1\r\n{host}\r\n"));
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let foreign = ask(
        port,
        &format!("GET / HTTP/1.1\r\nHost: rebound.example:{port}\r\n\r\n"),
    );
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    let other = ask(port, &format!("GET /../t.jsonl HTTP/1.1\r\n{host}\r\n"));
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    let huge = ask(
        port,
        &format!("GET / HTTP/1.1\r\n{host}X: {}\r\n\r\n", "a".repeat(20_000)),
    );
    assert!(huge.starts_with("HTTP/1.1 400"), "{huge}");
    let _ = child.kill();
    let _ = child.wait();
}
