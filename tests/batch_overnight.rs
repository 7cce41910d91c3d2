//! `rlm batch` left running unattended, through the binary, with real
//! signals and a loopback model: `--out` never destroys what is not ours,
//! the results file holds one line per task after any mix of interrupts,
//! kills and resumes, resume re-runs what `--retry` names, the exit status
//! describes the whole file, a recorded batch replays with no network, and
//! the progress counts add up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rlm::testing::{MockServer, Reply};

mod common;

/// The root counts the context's lines and asks the sub-model for the
/// first line's word count; a query with "ITER" never submits, one with
/// "FAIL" is refused by the server.
fn server(delay: Duration) -> MockServer {
    MockServer::start(move |req| {
        let first = req.first_user_message();
        if first.contains("FAIL") {
            return Reply::error(400, "this task is refused");
        }
        let reply = if req.is_root_turn() && first.contains("ITER") {
            Reply::openai_text(&common::code("print(1);"), 10, 5)
        } else if req.is_root_turn() {
            Reply::openai_text(
                &common::code("let n = context.line_count();\nlet w = llm_query(`words: ${context.line(1)}`);\nsubmit(`${n} lines, ${w}`);"),
                100,
                20,
            )
        } else {
            let words = req.prompt().split_whitespace().count() - 1;
            Reply::openai_text(&format!("{words} words"), 10, 2)
        };
        reply.after(delay)
    })
}

/// Task `t{i}` has `i % 5 + 1` lines of `i % 3 + 1` words each.
fn task_line(i: usize, query: &str) -> String {
    let words = vec!["w"; i % 3 + 1].join(" ");
    let text = format!("{words}\n").repeat(i % 5 + 1);
    serde_json::json!({"id": format!("t{i}"), "query": query, "context_text": text}).to_string()
}

fn expected_answer(i: usize) -> String {
    format!("{} lines, {} words", i % 5 + 1, i % 3 + 1)
}

fn write_tasks(dir: &Path, n: usize) -> PathBuf {
    let text: String = (0..n)
        .map(|i| task_line(i, "How many lines?") + "\n")
        .collect();
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn batch_command(server: &MockServer, dir: &Path, tasks: &Path, out: &Path) -> Command {
    let mut c = common::rlm(dir);
    c.arg("batch")
        .arg(tasks)
        .arg("--out")
        .arg(out)
        .args(["--max-retries", "0", "--quiet"])
        .args(common::loopback_models(server));
    c
}

fn batch(
    server: &MockServer,
    dir: &Path,
    tasks: &Path,
    out: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    common::output(batch_command(server, dir, tasks, out).args(extra))
}

/// The results by id, requiring exactly one whole line per id.
fn one_line_per_task(out: &Path) -> BTreeMap<String, serde_json::Value> {
    let lines = common::jsonl(out);
    let mut by_id = BTreeMap::new();
    for r in lines {
        let id = r["id"].as_str().unwrap().to_string();
        assert!(by_id.insert(id.clone(), r).is_none(), "two lines for {id}");
    }
    by_id
}

fn assert_all_answered(by_id: &BTreeMap<String, serde_json::Value>, n: usize) {
    assert_eq!(by_id.len(), n);
    for i in 0..n {
        let r = &by_id[&format!("t{i}")];
        assert_eq!(r["status"], "submitted", "{r}");
        assert_eq!(r["answer"], expected_answer(i).as_str(), "{r}");
    }
}

#[test]
fn out_holding_other_json_lines_is_refused_and_left_untouched() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 3);
    let precious = dir.path().join("precious.jsonl");
    let body = "{\"user\": \"ada\", \"score\": 3}\n{\"user\": \"bob\", \"score\": 5}\n";
    std::fs::write(&precious, body).unwrap();
    let (code, _, err) = batch(&server, dir.path(), &tasks, &precious, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("precious.jsonl:1 is not an rlm result line") && err.contains("ada"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), body);
    assert!(server.requests().is_empty(), "it ran tasks before refusing");

    // A file that is one line of text, with no newline, is not a torn result.
    std::fs::write(&precious, "my notes").unwrap();
    let (code, _, err) = batch(&server, dir.path(), &tasks, &precious, &[]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "my notes");
}

#[test]
fn out_naming_the_task_file_or_a_trace_is_refused() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 3);
    let before = std::fs::read_to_string(&tasks).unwrap();
    let (code, _, err) = batch(&server, dir.path(), &tasks, &tasks, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is the task file"), "{err}");
    // Through another spelling of the same path, too.
    let other = dir.path().join(".").join("tasks.jsonl");
    let (code, _, err) = batch(&server, dir.path(), &tasks, &other, &[]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_to_string(&tasks).unwrap(), before);

    let traces = dir.path().join("traces");
    std::fs::create_dir(&traces).unwrap();
    std::fs::write(traces.join("t0.jsonl"), "trace\n").unwrap();
    let (code, _, err) = batch(
        &server,
        dir.path(),
        &tasks,
        &traces.join("t0.jsonl"),
        &["--trace-dir", traces.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("inside --trace-dir"), "{err}");
    assert_eq!(
        std::fs::read_to_string(traces.join("t0.jsonl")).unwrap(),
        "trace\n"
    );
    // A trace directory that does not exist yet, spelled two ways: refused,
    // and not created.
    let (code, _, err) = batch(
        &server,
        dir.path(),
        &tasks,
        &dir.path().join("new-traces/out.jsonl"),
        &["--trace-dir", "./new-traces"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("inside --trace-dir"), "{err}");
    assert!(!dir.path().join("new-traces").exists());
    assert!(server.requests().is_empty());
}

#[test]
fn a_garbage_line_mid_file_refuses_instead_of_re_paying_the_rest() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 12);
    let out = dir.path().join("out.jsonl");
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 0, "{err}");
    let calls = server.requests().len();
    let mut lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.insert(4, "<<<<<<< merge conflict".into());
    let edited = lines.join("\n") + "\n";
    std::fs::write(&out, &edited).unwrap();
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("out.jsonl:5 is not an rlm result line"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), edited);
    assert_eq!(server.requests().len(), calls, "finished tasks were re-run");
}

#[test]
fn a_torn_last_line_is_dropped_with_a_warning_and_its_task_runs_again() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 5);
    let out = dir.path().join("out.jsonl");
    assert_eq!(batch(&server, dir.path(), &tasks, &out, &[]).0, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let last = text.trim_end().rsplit('\n').next().unwrap().to_string();
    let torn_id: serde_json::Value = serde_json::from_str(&last).unwrap();
    // Cut the last line mid-write, as a kill during `write` would.
    let cut = text.len() - last.len() / 2 - 1;
    std::fs::write(&out, &text[..cut]).unwrap();
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("dropped a torn last line"), "{err}");
    assert!(err.contains("ran 1 now"), "{err}");
    let by_id = one_line_per_task(&out);
    assert_all_answered(&by_id, 5);
    assert!(by_id.contains_key(torn_id["id"].as_str().unwrap()));
}

/// Starts a batch of `n` slow tasks, waits `after`, sends `signal`.
fn start_then_signal(
    server: &MockServer,
    dir: &Path,
    tasks: &Path,
    out: &Path,
    signal: i32,
) -> (Child, Option<i32>) {
    let mut child = batch_command(server, dir, tasks, out)
        .args(["--jobs", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id() as i32;
    // SAFETY: signalling our own child process, which is still running.
    unsafe {
        libc::kill(pid, signal);
    }
    let status = child.wait().unwrap();
    let code = status.code();
    (child, code)
}

fn interrupt_and_resume(signal: i32) {
    let server = server(Duration::from_millis(120));
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 40);
    let out = dir.path().join("out.jsonl");
    let (mut child, code) = start_then_signal(&server, dir.path(), &tasks, &out, signal);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    match signal {
        libc::SIGKILL => assert_eq!(code, None, "{err}"),
        _ => assert_eq!(code, Some(130), "{err}"),
    }
    let partial = std::fs::read_to_string(&out).unwrap_or_default();
    let whole = partial.lines().filter(|l| l.ends_with('}')).count();
    assert!(whole < 40, "the batch ended before the signal: {err}");

    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &["--jobs", "8"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("40 in ") && err.contains("40 submitted"),
        "{err}"
    );
    assert_all_answered(&one_line_per_task(&out), 40);
}

#[test]
fn sigint_then_resume_leaves_one_right_line_per_task() {
    interrupt_and_resume(libc::SIGINT);
}

#[test]
fn sigterm_then_resume_leaves_one_right_line_per_task() {
    interrupt_and_resume(libc::SIGTERM);
}

#[test]
fn sigkill_then_resume_leaves_one_right_line_per_task() {
    interrupt_and_resume(libc::SIGKILL);
}

#[test]
fn the_exit_status_describes_the_whole_file_and_retry_reruns_what_it_names() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..6 {
        text += &(task_line(i, "How many lines?") + "\n");
    }
    text += &(task_line(6, "ITER forever") + "\n");
    text += &(task_line(7, "please FAIL") + "\n");
    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(&tasks, &text).unwrap();
    let out = dir.path().join("out.jsonl");
    let (code, _, err) = batch(
        &server,
        dir.path(),
        &tasks,
        &out,
        &["--max-iterations", "2"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("8 in ")
            && err.contains("6 submitted")
            && err.contains("1 failed")
            && err.contains("1 max_iterations"),
        "{err}"
    );

    // Nothing left to run is still not success: the file holds failures.
    let calls = server.requests().len();
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("ran 0 now") && err.contains("6 submitted"),
        "{err}"
    );
    assert_eq!(server.requests().len(), calls);

    // --retry names which statuses run again; the others are kept.
    let (code, _, err) = batch(
        &server,
        dir.path(),
        &tasks,
        &out,
        &["--retry", "max_iterations", "--max-iterations", "3"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ran 1 now"), "{err}");
    let by_id = one_line_per_task(&out);
    assert_eq!(by_id["t6"]["iterations"], 3, "{}", by_id["t6"]);
    assert_eq!(by_id["t7"]["status"], "failed");

    // --retry-failed is --retry failed.
    let (_, _, err) = batch(&server, dir.path(), &tasks, &out, &["--retry-failed"]);
    assert!(err.contains("ran 1 now"), "{err}");
    assert_eq!(one_line_per_task(&out).len(), 8);

    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &["--retry", "faild"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_iterations"), "{err}");
}

#[test]
fn a_batch_whose_tasks_all_failed_does_not_resume_as_success() {
    let server = MockServer::start(|_| Reply::error(500, "overloaded"));
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 10);
    let out = dir.path().join("out.jsonl");
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("10 in ") && err.contains("10 failed"), "{err}");
    assert!(
        err.contains("--retry"),
        "the summary says how to re-run: {err}"
    );
}

#[test]
fn shards_merge_with_cat() {
    let server = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 20);
    let mut merged = String::new();
    for i in 0..3 {
        let out = dir.path().join(format!("part-{i}.jsonl"));
        let shard = format!("{i}/3");
        assert_eq!(
            batch(&server, dir.path(), &tasks, &out, &["--shard", &shard]).0,
            0
        );
        // A restarted shard re-runs with --retry; its part still holds one line per task.
        batch(
            &server,
            dir.path(),
            &tasks,
            &out,
            &["--shard", &shard, "--retry-failed"],
        );
        merged += &std::fs::read_to_string(&out).unwrap();
    }
    let path = dir.path().join("merged.jsonl");
    std::fs::write(&path, merged).unwrap();
    assert_all_answered(&one_line_per_task(&path), 20);
}

#[test]
fn a_second_batch_on_the_same_results_file_is_refused_while_the_first_runs() {
    let server = server(Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 20);
    let out = dir.path().join("out.jsonl");
    let mut first = batch_command(&server, dir.path(), &tasks, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first has the file open (its first line is in).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&out).map_or(true, |s| s.is_empty()) {
        assert!(Instant::now() < deadline, "no result appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, err) = batch(&server, dir.path(), &tasks, &out, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already in use by another rlm batch"), "{err}");
    assert!(first.wait().unwrap().success());
    assert_all_answered(&one_line_per_task(&out), 20);
}

#[test]
fn a_recorded_batch_replays_with_no_key_and_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 6);
    let out = dir.path().join("recorded.jsonl");
    let traces = dir.path().join("traces");
    {
        let server = server(Duration::ZERO);
        let (code, _, err) = batch(
            &server,
            dir.path(),
            &tasks,
            &out,
            &["--trace-dir", traces.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{err}");
    } // the server is gone: nothing can answer over the network now
    let model = format!("replay:{}", traces.display());
    let replay = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let (code, _, err) = common::output(
            common::rlm(dir.path())
                .arg("batch")
                .arg(&tasks)
                .arg("--out")
                .arg(&out)
                .args(["--model", &model, "--quiet"])
                .args(extra),
        );
        (code, err, out)
    };
    let (code, err, replayed) = replay("replayed.jsonl", &[]);
    assert_eq!(code, 0, "{err}");
    assert_all_answered(&one_line_per_task(&replayed), 6);

    // A task with no recorded trace fails alone, saying so.
    std::fs::remove_file(traces.join("t3.jsonl")).unwrap();
    let (code, err, again) = replay("again.jsonl", &[]);
    assert_eq!(code, 3, "{err}");
    let by_id = one_line_per_task(&again);
    assert!(by_id["t3"]["error"]
        .as_str()
        .unwrap()
        .contains("no usable trace for task t3"));
    assert_eq!(by_id["t2"]["status"], "submitted");

    // Recording the replay over the traces it reads is refused.
    let (code, err, _) = replay("x.jsonl", &["--trace-dir", traces.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is the directory being replayed"), "{err}");
}

#[test]
fn an_eval_recorded_with_traces_replays_to_the_same_scores() {
    // A root model that finds the needle with a regex, and submits it.
    let server = MockServer::start(|_| {
        Reply::openai_text(
            &common::code("let m = context.matches(`special magic numbers for [a-z-]+ is: ([0-9]{7})`, 1);\nsubmit(m[0].groups[0]);"),
            50,
            10,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let eval = |models: &[&str], trace_dir: &Path| {
        common::output(
            common::rlm(dir.path())
                .args(["eval", "niah", "--n", "2", "--lengths", "8k"])
                .args(["--json", "--quiet", "--pool", "builtin"])
                .args(models)
                .arg("--trace-dir")
                .arg(trace_dir),
        )
    };
    let models = common::loopback_models(&server);
    let models: Vec<&str> = models.iter().map(String::as_str).collect();
    let (code, recorded, err) = eval(&models, &traces);
    assert_eq!(code, 0, "{err}");
    drop(server);
    let replay = format!("replay:{}", traces.display());
    let (code, replayed, err) = eval(&["--model", &replay], &dir.path().join("replay-traces"));
    assert_eq!(code, 0, "{err}");
    let scores = |json: &str| -> Vec<f64> {
        let rows: serde_json::Value = serde_json::from_str(json).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(
        scores(&recorded),
        scores(&replayed),
        "{recorded}\n{replayed}"
    );
    assert!(scores(&recorded).iter().all(|s| *s == 1.0), "{recorded}");
}

/// One frame of the progress bar: `E/T tasks: S submitted, N not, R running, Q queued`.
fn frame_counts(frame: &str) -> Option<[usize; 6]> {
    let start = frame.find(" tasks: ")?;
    let head = frame[..start].rsplit(' ').next()?;
    let (e, t) = head.split_once('/')?;
    let rest = &frame[start + 8..];
    let nums: Vec<usize> = rest
        .split(", ")
        .take(4)
        .filter_map(|p| p.split(' ').next()?.parse().ok())
        .collect();
    if nums.len() != 4 {
        return None;
    }
    Some([
        e.parse().ok()?,
        t.parse().ok()?,
        nums[0],
        nums[1],
        nums[2],
        nums[3],
    ])
}

#[test]
fn the_progress_bar_adds_up_and_shows_no_eta_before_a_task_ends() {
    // `script` gives the batch a real terminal, so it draws its bar.
    if Command::new("script").arg("--version").output().is_err() {
        panic!("the `script` command (util-linux) is needed: .ci/run installs it");
    }
    let server = server(Duration::from_millis(150));
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path(), 12);
    let out = dir.path().join("out.jsonl");
    let typescript = dir.path().join("typescript");
    let models = common::loopback_models(&server).join(" ");
    let cmd = format!(
        "{} batch {} --out {} --jobs 3 --max-retries 0 {models}",
        env!("CARGO_BIN_EXE_rlm"),
        tasks.display(),
        out.display()
    );
    let status = Command::new("script")
        .args(["-q", "-e", "-c", &cmd])
        .arg(&typescript)
        .current_dir(dir.path())
        .env_remove("OPENAI_API_KEY")
        .env("COLUMNS", "200")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let screen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    let frames: Vec<&str> = screen
        .split(['\r', '\n', '\u{1b}'])
        .filter(|f| f.contains(" tasks: "))
        .collect();
    let mut parsed = 0;
    let mut seen_ended = BTreeSet::new();
    for frame in &frames {
        let Some([ended, total, submitted, not, running, queued]) = frame_counts(frame) else {
            continue;
        };
        parsed += 1;
        seen_ended.insert(ended);
        assert_eq!(total, 12, "{frame}");
        assert_eq!(submitted + not, ended, "{frame}");
        assert_eq!(ended + running + queued, total, "{frame}");
        assert!(running <= 3, "{frame}");
        assert_eq!(frame.contains("ETA"), ended > 0 && ended < total, "{frame}");
    }
    assert!(parsed >= 3, "too few frames: {screen:?}");
    assert!(
        seen_ended.contains(&0),
        "no frame before the first task ended"
    );
    assert_all_answered(&one_line_per_task(&out), 12);
}
