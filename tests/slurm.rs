//! `dist/slurm/` on a real one-node Slurm cluster: the harness writes its
//! own munge key and `slurm.conf` in a temporary directory, starts
//! `munged`, `slurmctld` and `slurmd` itself and stops them at the end,
//! and submits `dist/slurm/rlm-batch.sbatch` as a job array against a
//! loopback model. `dist/slurm/merge.sh` merges the parts.
//!
//! Where Slurm cannot start (not root, packages missing) the cluster tests
//! say so and pass, unless `RLM_REQUIRE_SLURM=1` (as `.ci/run` sets), when
//! that is a failure. The merge script's refusals need no cluster and
//! always run.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rlm::batch::shard_of;
use rlm::testing::{MockServer, Reply};
use serde_json::Value;

mod common;

const TASKS: usize = 40;
const SHARDS: usize = 4;
/// In every temporary directory's name, with the owning test process's
/// id after it, so a later run can tell daemons a killed run left behind.
const MARKER: &str = "rlm-slurm-test-";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------
// Tasks, the loopback model and the expected answers.

/// Task `t{i}` has `i % 5 + 1` lines of `i % 3 + 1` words; its id is in
/// the query, so the model can tell the tasks apart.
fn write_tasks(dir: &Path) -> PathBuf {
    let text: String = (0..TASKS)
        .map(|i| {
            let words = vec!["w"; i % 3 + 1].join(" ");
            let context = format!("{words}\n").repeat(i % 5 + 1);
            let query = format!("How many lines? [t{i}]");
            serde_json::json!({"id": format!("t{i}"), "query": query, "context_text": context})
                .to_string()
                + "\n"
        })
        .collect();
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn expected_answer(id: &str) -> String {
    let i: usize = id[1..].parse().unwrap();
    format!("{} lines, {} words", i % 5 + 1, i % 3 + 1)
}

/// The task id in a root turn's first message.
fn task_id(first_user_message: &str) -> Option<String> {
    let start = first_user_message.find("[t")? + 1;
    let len = first_user_message[start..].find(']')?;
    Some(first_user_message[start..start + len].to_string())
}

/// Holds one shard mid-run: once `keep` of its tasks have started, the
/// root turn of any other of its tasks gets no reply until released.
/// With `--jobs 1` the shard then has exactly `keep` lines and one task
/// in flight, whatever the machine's speed.
struct Gate {
    shard: usize,
    keep: usize,
    closed: AtomicBool,
    started: Mutex<HashSet<String>>,
}

impl Gate {
    fn new(shard: usize, keep: usize) -> Arc<Gate> {
        Arc::new(Gate {
            shard,
            keep,
            closed: AtomicBool::new(true),
            started: Mutex::new(HashSet::new()),
        })
    }

    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    fn holds(&self, id: &str) -> bool {
        if !self.closed.load(Ordering::SeqCst) || shard_of(id, SHARDS) != self.shard {
            return false;
        }
        let mut started = self.started.lock().unwrap();
        if started.contains(id) || started.len() < self.keep {
            started.insert(id.to_string());
            return false;
        }
        true
    }
}

/// The root counts the context's lines and asks the sub-model for the
/// first line's word count: two calls per task.
fn server(gate: Option<Arc<Gate>>) -> MockServer {
    MockServer::start(move |req| {
        if !req.is_root_turn() {
            let words = req.prompt().split_whitespace().count() - 1;
            return Reply::openai_text(&format!("{words} words"), 10, 2);
        }
        let reply = Reply::openai_text(
            &common::code("let n = context.line_count();\nlet w = llm_query(`words: ${context.line(1)}`);\nsubmit(`${n} lines, ${w}`);"),
            100,
            20,
        );
        let id = task_id(&req.first_user_message()).unwrap_or_default();
        match &gate {
            // Longer than any test waits: the job is cancelled or killed
            // while this call is in flight.
            Some(g) if g.holds(&id) => reply.after(Duration::from_secs(300)),
            _ => reply,
        }
    })
}

/// How many root turns each task id was sent.
fn root_turns(server: &MockServer) -> BTreeMap<String, usize> {
    let mut turns = BTreeMap::new();
    for r in server.requests().iter().filter(|r| r.is_root_turn()) {
        if let Some(id) = task_id(&r.first_user_message()) {
            *turns.entry(id).or_insert(0) += 1;
        }
    }
    turns
}

/// The whole lines of a part file (a torn last one left out), parsed.
fn whole_lines(path: &Path) -> Vec<Value> {
    let body = std::fs::read_to_string(path).unwrap_or_default();
    body.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

fn run_merge(parts: &Path, results: &Path) -> (i32, String) {
    let out = Command::new("sh")
        .arg(repo().join("dist/slurm/merge.sh"))
        .arg(parts)
        .arg(SHARDS.to_string())
        .arg(results)
        .output()
        .expect("run sh");
    (out.status.code().unwrap_or(-1), common::text(&out.stderr))
}

/// Merges the parts and checks the result: every task exactly once,
/// submitted, with its right answer; and each part held only its shard.
fn assert_merges_to_all_tasks(parts: &Path) -> usize {
    for shard in 0..SHARDS {
        for r in whole_lines(&parts.join(format!("part-{shard}.jsonl"))) {
            let id = r["id"].as_str().unwrap();
            assert_eq!(shard_of(id, SHARDS), shard, "{id} is in part-{shard}");
        }
    }
    let results = parts.join("results.jsonl");
    let (code, err) = run_merge(parts, &results);
    assert_eq!(code, 0, "merge.sh: {err}");
    let lines = common::jsonl(&results);
    let ids: BTreeSet<String> = lines
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), lines.len(), "a task has two lines");
    assert_eq!(ids.len(), TASKS);
    for r in &lines {
        let id = r["id"].as_str().unwrap();
        assert_eq!(r["status"], "submitted", "{r}");
        assert_eq!(r["answer"], expected_answer(id).as_str(), "{r}");
    }
    lines.len()
}

// ---------------------------------------------------------------------
// Running commands with a bound, and waiting with a bound.

/// Runs a command to its end, killing it after `limit`: (exit code,
/// stdout, stderr). Outputs are small, so reading them after exit is safe.
fn run_bounded(c: &mut Command, limit: Duration) -> (i32, String, String) {
    let what = format!("{c:?}");
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), out, err)
}

/// Polls `probe` until it gives a value, or fails after `limit` naming
/// what was awaited and showing `context()` (daemon logs, job logs).
fn wait_for<T>(
    what: &str,
    limit: Duration,
    context: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------
// Processes: found through /proc, signalled by pid.

/// Pids of the processes whose command line or working directory holds
/// `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle)
                || cwd.to_string_lossy().contains(needle)
        })
        .collect()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid this harness started or found by its
    // marker; it touches no memory.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Kills what an earlier run of these tests left behind when it was itself
/// killed (its Drop never ran): processes and directories named with
/// [`MARKER`] whose owning test process is gone. A concurrent run's
/// cluster has a live owner and is left alone.
fn kill_leftovers() {
    let dead_owner = |text: &str| {
        text.split(MARKER)
            .skip(1)
            .filter_map(|rest| rest.split('-').next()?.parse::<i32>().ok())
            .any(|owner| !Path::new(&format!("/proc/{owner}")).exists())
    };
    for pid in processes_mentioning(MARKER) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if dead_owner(&String::from_utf8_lossy(&cmdline)) || dead_owner(&cwd.to_string_lossy()) {
            signal(pid, libc::SIGKILL);
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(MARKER) && dead_owner(&name) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

// ---------------------------------------------------------------------
// The cluster.

/// Environment that would change what a job's rlm does; jobs get ours.
const JOB_ENV: &[&str] = &[
    "RLM_MODEL",
    "RLM_SUB_MODEL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "RLM_MAX_LLM_CALLS",
    "RLM_MAX_TOKENS",
    "RLM_ARGS",
    "TASKS",
    "OUT",
    "SHARDS",
    "RLM_BIN",
];

/// A one-node Slurm cluster in a temporary directory. Dropping it cancels
/// its jobs, stops its daemons, kills any process still in its directory
/// and removes the directory.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

/// Why the cluster tests cannot run on this machine.
fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: slurmd must run as root to start jobs".into());
    }
    for (cmd, package) in [
        ("munged", "munge"),
        ("slurmctld", "slurm-wlm"),
        ("slurmd", "slurm-wlm"),
        ("sbatch", "slurm-wlm"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{cmd} not found: install {package}"));
        }
    }
    None
}

/// The cluster tests share the machine's two cores: one cluster at a time.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// A started cluster, or `None` (after saying why) where Slurm cannot run
/// here and `RLM_REQUIRE_SLURM` is not set.
fn cluster() -> Option<Cluster> {
    if let Some(why) = missing_prerequisite() {
        assert!(
            std::env::var_os("RLM_REQUIRE_SLURM").is_none_or(|v| v.is_empty() || v == "0"),
            "RLM_REQUIRE_SLURM is set, but Slurm cannot start here: {why}"
        );
        eprintln!(
            "skipped: Slurm cannot start here: {why} (RLM_REQUIRE_SLURM=1 makes this a failure)"
        );
        return None;
    }
    kill_leftovers();
    Some(Cluster::start())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// This machine's hardware as `slurmd -C` reports it, for the node line
/// (a node configured with more than it has would be drained).
fn hardware() -> String {
    let (code, out, err) = run_bounded(Command::new("slurmd").arg("-C"), Duration::from_secs(30));
    assert_eq!(code, 0, "slurmd -C: {err}");
    let line = out.lines().next().unwrap_or_default();
    line.split_whitespace()
        .filter(|f| !f.starts_with("NodeName="))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{MARKER}{}-", std::process::id()))
            .tempdir()
            .expect("a temporary directory");
        let d = dir.path().to_path_buf();
        // munged wants its socket's directory open to all.
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["munge", "state", "spool", "log", "parts"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let key = d.join("munge/munge.key");
        let (code, _, err) = run_bounded(
            Command::new("dd")
                .arg("if=/dev/urandom")
                .arg(format!("of={}", key.display()))
                .args(["bs=1024", "count=1"]),
            Duration::from_secs(10),
        );
        assert_eq!(code, 0, "dd: {err}");
        // munged runs as root here, so root owns the key, readable only by it.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o400))
            .unwrap();
        let socket = d.join("munge/munge.socket");
        let conf = d.join("slurm.conf");
        std::fs::write(&conf, slurm_conf(&d, &socket)).unwrap();

        let mut cluster = Cluster {
            dir,
            conf,
            daemons: Vec::new(),
        };
        cluster.spawn(
            "munged",
            Command::new("munged")
                .arg("--foreground")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!(
                    "--pid-file={}",
                    d.join("munge/munged.pid").display()
                ))
                .arg(format!("--log-file={}", d.join("log/munged.log").display()))
                .arg(format!(
                    "--seed-file={}",
                    d.join("munge/munged.seed").display()
                )),
        );
        cluster.wait_for("munged's socket", Duration::from_secs(20), || {
            socket.exists().then_some(())
        });
        let conf = cluster.conf.clone();
        cluster.spawn(
            "slurmctld",
            Command::new("slurmctld").arg("-D").arg("-f").arg(&conf),
        );
        cluster.spawn(
            "slurmd",
            Command::new("slurmd")
                .args(["-D", "-N", "rlmnode", "-f"])
                .arg(&conf),
        );
        cluster.wait_for(
            "the node to be idle in sinfo",
            Duration::from_secs(60),
            || {
                let (code, out, _) = run_bounded(
                    cluster.slurm("sinfo").args(["-h", "-N", "-o", "%T"]),
                    Duration::from_secs(20),
                );
                (code == 0 && out.trim() == "idle").then_some(())
            },
        );
        cluster
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn parts(&self) -> PathBuf {
        self.dir().join("parts")
    }

    fn spawn(&mut self, name: &'static str, c: &mut Command) {
        let log = |suffix: &str| {
            std::fs::File::create(self.dir().join(format!("log/{name}.{suffix}"))).unwrap()
        };
        // In the cluster's directory, so that helpers they fork
        // (slurmscriptd) are found by it at the end.
        let child = c
            .env("SLURM_CONF", &self.conf)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log("out"))
            .stderr(log("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// A Slurm client command aimed at this cluster.
    fn slurm(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).current_dir(self.dir());
        c
    }

    /// Every log the daemons and the jobs wrote, for a failure's message.
    fn logs(&self) -> String {
        let mut all = String::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir().join("log"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        for p in paths {
            let body = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = body.lines().rev().take(30).collect();
            all.push_str(&format!("--- {}\n", p.display()));
            for l in tail.iter().rev() {
                all.push_str(l);
                all.push('\n');
            }
        }
        all
    }

    fn wait_for<T>(&self, what: &str, limit: Duration, probe: impl FnMut() -> Option<T>) -> T {
        wait_for(what, limit, || self.logs(), probe)
    }

    /// Submits `dist/slurm/rlm-batch.sbatch` as `--array=ARRAY`, with the
    /// model and paths in the job's environment as a user would set them;
    /// returns the array's job id.
    fn submit(&self, array: &str, tasks: &Path, server: &MockServer) -> String {
        let mut c = self.slurm("sbatch");
        for var in JOB_ENV {
            c.env_remove(var);
        }
        c.env("RLM_BIN", env!("CARGO_BIN_EXE_rlm"))
            .env("TASKS", tasks)
            .env("OUT", self.parts())
            .env("SHARDS", SHARDS.to_string())
            .env("RLM_MODEL", "gpt-5")
            .env("RLM_SUB_MODEL", "gpt-5-mini")
            .env("OPENAI_BASE_URL", server.openai_url())
            .env("RLM_ARGS", "--jobs 1 --max-retries 0")
            .arg("--parsable")
            .arg(format!("--array={array}"))
            .arg(format!(
                "--output={}/log/job-%A_%a.out",
                self.dir().display()
            ))
            .arg(repo().join("dist/slurm/rlm-batch.sbatch"));
        let (code, out, err) = run_bounded(&mut c, Duration::from_secs(60));
        assert_eq!(code, 0, "sbatch: {err}\n{}", self.logs());
        out.trim().split(';').next().unwrap().to_string()
    }

    /// Each array task's state, `JOB_INDEX -> STATE`, finished ones included.
    fn states(&self, job: &str) -> BTreeMap<String, String> {
        let (code, out, err) = run_bounded(
            self.slurm("squeue")
                .args(["-h", "-r", "--states=all", "-o", "%i %T", "-j", job]),
            Duration::from_secs(30),
        );
        assert_eq!(code, 0, "squeue: {err}");
        out.lines()
            .filter_map(|l| {
                let (id, state) = l.split_once(' ')?;
                Some((id.to_string(), state.trim().to_string()))
            })
            .collect()
    }

    /// Waits until each of the array job's `n` tasks has ended, and
    /// returns their states.
    fn wait_ended(&self, job: &str, n: usize) -> BTreeMap<String, String> {
        const ENDED: &[&str] = &[
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
        ];
        self.wait_for(
            &format!("job {job}'s tasks to end"),
            Duration::from_secs(120),
            || {
                let states = self.states(job);
                (states.len() == n && states.values().all(|s| ENDED.contains(&s.as_str())))
                    .then_some(states)
            },
        )
    }

    fn wait_state(&self, job: &str, task: &str, state: &str) {
        self.wait_for(
            &format!("{task} to be {state}"),
            Duration::from_secs(120),
            || (self.states(job).get(task).map(String::as_str) == Some(state)).then_some(()),
        )
    }

    fn part(&self, shard: usize) -> PathBuf {
        self.parts().join(format!("part-{shard}.jsonl"))
    }

    /// Waits until no process is writing `shard`'s part file any more.
    fn wait_no_writer(&self, shard: usize) {
        let part = self.part(shard).display().to_string();
        self.wait_for(
            &format!("shard {shard}'s rlm to exit"),
            Duration::from_secs(60),
            || processes_mentioning(&part).is_empty().then_some(()),
        )
    }

    fn control(&self, program: &str, args: &[&str]) {
        let (code, _, err) = run_bounded(self.slurm(program).args(args), Duration::from_secs(30));
        assert_eq!(code, 0, "{program} {args:?}: {err}\n{}", self.logs());
    }
}

fn slurm_conf(d: &Path, socket: &Path) -> String {
    let d = d.display();
    format!(
        "# Written by tests/slurm.rs: a one-node cluster, all state in {d}.
ClusterName=rlmtest
SlurmctldHost=localhost
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=2
MinJobAge=600
MessageTimeout=10
NodeName=rlmnode NodeHostname=localhost NodeAddr=127.0.0.1 {hardware} State=UNKNOWN
PartitionName=debug Nodes=rlmnode Default=YES MaxTime=INFINITE State=UP
",
        ctld = free_port(),
        slurmd = free_port(),
        socket = socket.display(),
        hardware = hardware(),
    )
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first, while slurmd is there to end them.
        let _ = self
            .slurm("scancel")
            .args(["--full", "-u", "root"])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let live = Command::new("squeue")
                .env("SLURM_CONF", &self.conf)
                .args(["-h", "-o", "%i"])
                .output()
                .map(|o| o.stdout.is_empty())
                .unwrap_or(true);
            if live {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            signal(child.id() as i32, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // slurmstepd and job processes detach from slurmd; they are ours
        // if they run in, or name, this cluster's directory.
        let dir = self.dir().display().to_string();
        for pid in processes_mentioning(&dir) {
            signal(pid, libc::SIGKILL);
        }
    }
}

// ---------------------------------------------------------------------
// The tests.

#[test]
fn a_four_shard_array_over_forty_tasks_merges_to_forty_unique_correct_lines() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = cluster() else { return };
    let started = Instant::now();
    let server = server(None);
    let tasks = write_tasks(cluster.dir());
    let job = cluster.submit("0-3", &tasks, &server);
    let states = cluster.wait_ended(&job, SHARDS);
    assert!(
        states.values().all(|s| s == "COMPLETED"),
        "{states:?}\n{}",
        cluster.logs()
    );
    assert_eq!(assert_merges_to_all_tasks(&cluster.parts()), TASKS);
    // Each task ran once: no shard ran another's tasks.
    let turns = root_turns(&server);
    assert_eq!(turns.len(), TASKS);
    assert!(turns.values().all(|&n| n == 1), "{turns:?}");
    eprintln!(
        "4 shards, 40 tasks: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Holds shard `gate.shard` with `gate.keep` lines written and its next
/// task in flight, the rest of the array run to the end; returns the job id.
fn run_until_held(cluster: &Cluster, server: &MockServer, gate: &Gate, tasks: &Path) -> String {
    let job = cluster.submit("0-3", tasks, server);
    let held = format!("{job}_{}", gate.shard);
    let part = cluster.part(gate.shard);
    cluster.wait_for(
        &format!(
            "{held} to write {} lines and start the next task",
            gate.keep
        ),
        Duration::from_secs(120),
        || {
            let started = gate.started.lock().unwrap().len();
            let lines = whole_lines(&part).len();
            // The held task's root turn has arrived: the shard is stuck.
            (lines == gate.keep && started == gate.keep && held_turn_arrived(server, gate))
                .then_some(())
        },
    );
    job
}

/// Whether a root turn the gate holds has been sent.
fn held_turn_arrived(server: &MockServer, gate: &Gate) -> bool {
    let started = gate.started.lock().unwrap().clone();
    root_turns(server)
        .keys()
        .any(|id| shard_of(id, SHARDS) == gate.shard && !started.contains(id))
}

#[test]
fn a_cancelled_shard_resubmitted_resumes_from_its_part_and_the_merge_is_still_forty() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = cluster() else { return };
    let tasks = write_tasks(cluster.dir());
    let gate = Gate::new(0, 3);
    let server = server(Some(gate.clone()));
    let job = run_until_held(&cluster, &server, &gate, &tasks);
    let finished: Vec<Value> = whole_lines(&cluster.part(0));

    cluster.control("scancel", &[&format!("{job}_0")]);
    cluster.wait_state(&job, &format!("{job}_0"), "CANCELLED");
    cluster.wait_no_writer(0);
    let states = cluster.wait_ended(&job, SHARDS);
    let before = whole_lines(&cluster.part(0));
    let shard_size = (0..TASKS)
        .filter(|i| shard_of(&format!("t{i}"), SHARDS) == 0)
        .count();
    assert!(
        before.len() < shard_size,
        "shard 0 was not cancelled mid-run"
    );

    gate.open();
    let again = cluster.submit("0", &tasks, &server);
    let resumed = cluster.wait_ended(&again, 1);
    assert_eq!(
        resumed.values().next().map(String::as_str),
        Some("COMPLETED"),
        "{}",
        cluster.logs()
    );
    let after = whole_lines(&cluster.part(0));
    let interrupted = before
        .iter()
        .filter(|r| r["status"] == "interrupted")
        .count();
    eprintln!(
        "shard 0 of {SHARDS} ({shard_size} tasks): {} lines when cancelled ({} finished, {interrupted} interrupted), {} after resuming",
        before.len(),
        before.len() - interrupted,
        after.len()
    );
    assert!(
        states
            .iter()
            .all(|(t, s)| s == "COMPLETED" || *t == format!("{job}_0")),
        "{states:?}"
    );
    assert_eq!(after.len(), shard_size);
    assert_eq!(assert_merges_to_all_tasks(&cluster.parts()), TASKS);
    // What had ended was kept, not run again.
    let turns = root_turns(&server);
    for r in &finished {
        let id = r["id"].as_str().unwrap();
        assert_eq!(turns[id], 1, "{id} ran again after the resume");
        let now = after.iter().find(|a| a["id"] == id).unwrap();
        assert_eq!(now, r, "{id}'s line changed");
    }
}

#[test]
fn a_shard_killed_with_sigkill_loses_nothing_finished_and_requeued_completes() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = cluster() else { return };
    let tasks = write_tasks(cluster.dir());
    let gate = Gate::new(1, 4);
    let server = server(Some(gate.clone()));
    let job = run_until_held(&cluster, &server, &gate, &tasks);
    let finished = whole_lines(&cluster.part(1));
    let task = format!("{job}_1");

    // The node "fails": rlm gets SIGKILL, with no chance to save anything.
    // (scancel --signal=KILL would not do: Slurm cancels with SIGTERM first.)
    let writers = processes_mentioning(&cluster.part(1).display().to_string());
    assert!(!writers.is_empty(), "no rlm process for shard 1");
    for pid in writers {
        signal(pid, libc::SIGKILL);
    }
    cluster.wait_no_writer(1);
    cluster.wait_ended(&job, SHARDS);
    let killed = whole_lines(&cluster.part(1));
    assert_eq!(killed, finished, "SIGKILL changed what was written");

    gate.open();
    cluster.control("scontrol", &["requeue", &task]);
    // A requeued job waits (BeginTime) before it is eligible again.
    cluster.control(
        "scontrol",
        &["update", &format!("jobid={task}"), "StartTime=now"],
    );
    cluster.wait_state(&job, &task, "COMPLETED");
    let after = whole_lines(&cluster.part(1));
    eprintln!(
        "shard 1: {} lines when killed, {} after the requeue",
        killed.len(),
        after.len()
    );
    assert_eq!(assert_merges_to_all_tasks(&cluster.parts()), TASKS);
    let turns = root_turns(&server);
    for r in &finished {
        let id = r["id"].as_str().unwrap();
        assert_eq!(turns[id], 1, "{id} ran again after the requeue");
        let now = after.iter().find(|a| a["id"] == id).unwrap();
        assert_eq!(now, r, "{id}'s line changed");
    }
}

// ---------------------------------------------------------------------
// The scripts alone, with no cluster.

/// Real parts: `rlm batch --shard i/4` for each shard, run here.
fn local_parts(dir: &Path) -> PathBuf {
    let server = server(None);
    let tasks = write_tasks(dir);
    let parts = dir.join("parts");
    std::fs::create_dir(&parts).unwrap();
    for shard in 0..SHARDS {
        let (code, _, err) = common::output(
            common::rlm(dir)
                .arg("batch")
                .arg(&tasks)
                .arg("--out")
                .arg(parts.join(format!("part-{shard}.jsonl")))
                .arg("--shard")
                .arg(format!("{shard}/{SHARDS}"))
                .args(["--quiet", "--max-retries", "0"])
                .args(common::loopback_models(&server)),
        );
        assert_eq!(code, 0, "{err}");
    }
    parts
}

/// What a case is called, how it breaks the parts, and what merge.sh says.
type Breakage<'a> = (&'static str, Box<dyn Fn() + 'a>, &'static str);

#[test]
fn merge_refuses_a_missing_torn_foreign_or_overlapping_part_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let parts = local_parts(dir.path());
    assert_eq!(assert_merges_to_all_tasks(&parts), TASKS);
    let results = parts.join("results.jsonl");
    let merged = std::fs::read(&results).unwrap();

    let part = |i: usize| parts.join(format!("part-{i}.jsonl"));
    let original: Vec<Vec<u8>> = (0..SHARDS)
        .map(|i| std::fs::read(part(i)).unwrap())
        .collect();
    let restore = || {
        for (i, body) in original.iter().enumerate() {
            std::fs::write(part(i), body).unwrap();
        }
    };
    let first_line = |i: usize| {
        let body = String::from_utf8(original[i].clone()).unwrap();
        body.lines().next().unwrap().to_string()
    };
    let cases: Vec<Breakage> = vec![
        (
            "missing part",
            Box::new(|| std::fs::remove_file(part(2)).unwrap()),
            "part-2.jsonl is missing",
        ),
        (
            "torn last line",
            Box::new(|| {
                let body = &original[1];
                std::fs::write(part(1), &body[..body.len() - 20]).unwrap();
            }),
            "torn line",
        ),
        (
            "foreign line",
            Box::new(|| {
                let mut body = original[3].clone();
                body.extend_from_slice(b"{\"user\": \"ada\"}\n");
                std::fs::write(part(3), body).unwrap();
            }),
            "not an rlm result line",
        ),
        (
            "a task in two parts",
            Box::new(|| {
                let mut body = original[1].clone();
                body.extend_from_slice(format!("{}\n", first_line(0)).as_bytes());
                std::fs::write(part(1), body).unwrap();
            }),
            "different shard counts",
        ),
    ];
    for (what, break_it, message) in cases {
        break_it();
        let (code, err) = run_merge(&parts, &results);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(err.contains(message), "{what}: {err}");
        assert_eq!(
            std::fs::read(&results).unwrap(),
            merged,
            "{what}: results changed"
        );
        restore();
    }
    let leftovers: Vec<_> = std::fs::read_dir(&parts)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("merge-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn merge_keeps_each_tasks_latest_line_and_exits_3_when_one_is_not_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let parts = local_parts(dir.path());
    // A part killed before compacting can hold a superseded line: here a
    // later, failed run of one task.
    let part = parts.join("part-2.jsonl");
    let body = std::fs::read_to_string(&part).unwrap();
    let first = body.lines().next().unwrap();
    assert!(first.contains(r#""status":"submitted""#), "{first}");
    let later_line = first.replace(r#""status":"submitted""#, r#""status":"failed""#);
    let later: Value = serde_json::from_str(&later_line).unwrap();
    std::fs::write(&part, format!("{body}{later_line}\n")).unwrap();

    let results = parts.join("results.jsonl");
    let (code, err) = run_merge(&parts, &results);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("39 submitted") && err.contains("1 failed"),
        "{err}"
    );
    let lines = common::jsonl(&results);
    assert_eq!(lines.len(), TASKS);
    let kept: Vec<&Value> = lines.iter().filter(|r| r["id"] == later["id"]).collect();
    assert_eq!(kept, vec![&later]);
}

#[test]
fn the_sbatch_script_refuses_an_array_index_that_is_not_a_shard_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    // echo stands in for rlm and shows the command it would have run.
    let script = |index: &str, shards: &str| {
        let out = Command::new("sh")
            .arg(repo().join("dist/slurm/rlm-batch.sbatch"))
            .current_dir(dir.path())
            .env("RLM_BIN", "echo")
            .env("TASKS", "tasks.jsonl")
            .env("SLURM_ARRAY_TASK_ID", index)
            .env("SHARDS", shards)
            .env("OUT", dir.path().join("parts"))
            .env("RLM_ARGS", "--jobs 8")
            .output()
            .unwrap();
        (
            out.status.code(),
            common::text(&out.stdout),
            common::text(&out.stderr),
        )
    };
    for (index, shards, message) in [
        ("4", "4", "array index 4 is not a shard of 4"),
        ("", "4", "submit with sbatch --array=0-3"),
        ("1", "x", "SHARDS is 'x'"),
    ] {
        let (code, out, err) = script(index, shards);
        assert_eq!(code, Some(2), "{index}/{shards}: {err}");
        assert!(err.contains(message), "{err}");
        assert_eq!(out, "", "it ran something");
        assert!(!dir.path().join("parts").exists());
    }
    let (code, out, err) = script("3", "4");
    assert_eq!(code, Some(0), "{err}");
    let part = dir.path().join("parts/part-3.jsonl");
    assert_eq!(
        out.trim(),
        format!(
            "batch tasks.jsonl --out {} --shard 3/4 --quiet --jobs 8",
            part.display()
        )
    );
}
