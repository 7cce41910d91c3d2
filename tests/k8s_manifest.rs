//! `dist/k8s/rlm-batch-job.yaml`, the indexed Job the README shows: it
//! is validated, not run (no cluster here). kubernetes-validate (from
//! `.ci/venv`, installed by `.ci/setup`) checks it against the bundled
//! schemas of two Kubernetes versions, offline in a network namespace of
//! its own; and each pod's command, with its completion index set as
//! Kubernetes sets it, runs through the real binary against a loopback
//! model, and the parts merge with `dist/slurm/merge.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rlm::testing::{MockServer, Reply};
use serde_json::Value;

mod common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest() -> PathBuf {
    repo().join("dist/k8s/rlm-batch-job.yaml")
}

fn venv_bin(name: &str) -> PathBuf {
    let path = repo().join(".ci/venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run .ci/setup, which installs kubernetes-validate and PyYAML",
        path.display()
    );
    path
}

/// A command run with no network: its own network namespace, holding only
/// a loopback interface that is down.
fn offline(program: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--map-root-user", "--net"]).arg(program);
    c
}

/// The kubernetes-validate versions bundled by the installed package
/// (`v1.37.0-local-strict` -> `1.37.0`), oldest first.
fn bundled_versions() -> Vec<(u32, u32, String)> {
    let lib = repo().join(".ci/venv/lib");
    let mut versions = Vec::new();
    for python in std::fs::read_dir(&lib).unwrap().flatten() {
        let schemas = python
            .path()
            .join("site-packages/kubernetes_validate/kubernetes-json-schema");
        for e in std::fs::read_dir(&schemas).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(v) = name
                .strip_prefix('v')
                .and_then(|n| n.strip_suffix("-local-strict"))
            else {
                continue;
            };
            let mut parts = v.split('.').map(|p| p.parse::<u32>());
            if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
                versions.push((major, minor, v.to_string()));
            }
        }
    }
    versions.sort();
    versions
}

/// Runs kubernetes-validate --strict offline: (passed, output).
fn validate(file: &Path, version: &str) -> (bool, String) {
    let out = offline(&venv_bin("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", version])
        .arg(file)
        .output()
        .expect("run unshare");
    let text = common::text(&out.stdout) + common::text(&out.stderr).as_str();
    (out.status.success(), text)
}

#[test]
fn the_indexed_job_validates_strictly_against_an_old_and_the_newest_bundled_kubernetes() {
    let versions = bundled_versions();
    let newest = versions.last().expect("bundled schemas").2.clone();
    assert!(
        versions.iter().any(|v| v.2 == "1.25.0"),
        "1.25.0 is not bundled: {versions:?}"
    );
    for version in ["1.25.0", newest.as_str()] {
        let (passed, out) = validate(&manifest(), version);
        assert!(passed, "{version}: {out}");
        let short = version.rsplit_once('.').unwrap().0;
        assert!(
            out.contains("passed for resource job/rlm-batch") && out.contains(short),
            "{version}: {out}"
        );
    }
}

#[test]
fn a_misspelt_field_or_a_pod_without_containers_fails_validation() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string(manifest()).unwrap();
    let misspelt = body.replace("completionMode:", "completionMod:");
    let no_containers = {
        // The containers list runs from its key to the volumes key.
        let start = body.find("      containers:").unwrap();
        let end = body.find("      volumes:").unwrap();
        format!("{}{}", &body[..start], &body[end..])
    };
    for (name, text, message) in [
        ("misspelt.yaml", misspelt, "'completionMod' was unexpected"),
        (
            "no-containers.yaml",
            no_containers,
            "'containers' is a required property",
        ),
    ] {
        assert_ne!(text, body);
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let (passed, out) = validate(&file, "1.25.0");
        assert!(!passed, "{name} passed: {out}");
        assert!(out.contains(message), "{name}: {out}");
    }
}

#[test]
fn the_validator_runs_with_no_network() {
    // A listener outside the namespace: reachable from here, not from it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), 2)\n    print('connected')\nexcept OSError as e:\n    print('refused', e)\n"
    );
    let run = |mut c: Command| {
        let out = c.arg("-c").arg(&probe).output().expect("run python");
        common::text(&out.stdout)
    };
    let mut outside = Command::new(venv_bin("python"));
    outside.env_remove("PYTHONPATH");
    assert_eq!(run(outside).trim(), "connected");
    let inside = run(offline(&venv_bin("python")));
    assert!(inside.starts_with("refused"), "{inside}");
}

#[test]
fn the_readme_shows_the_manifest_byte_for_byte() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let body = std::fs::read_to_string(manifest()).unwrap();
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```\n").next())
        .filter(|b| b.contains("completionMode: Indexed"))
        .collect();
    assert_eq!(blocks, vec![body.as_str()]);
}

/// The manifest as JSON, read by PyYAML.
fn manifest_json() -> Value {
    let out = Command::new(venv_bin("python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(manifest())
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn each_pods_command_with_its_completion_index_runs_rlm_and_the_parts_merge_to_every_task() {
    const TASKS: usize = 24;
    let job = manifest_json();
    let completions = job["spec"]["completions"].as_u64().unwrap() as usize;
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mounts: Vec<String> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(mounts, ["/data", "/results"]);

    // The volumes, mounted at temporary directories instead.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let results = dir.path().join("results");
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(&results).unwrap();
    let tasks: String = (0..TASKS)
        .map(|i| {
            let context = "x\n".repeat(i % 4 + 1);
            serde_json::json!({"id": format!("k{i}"), "query": "Lines?", "context_text": context})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(data.join("tasks.jsonl"), tasks).unwrap();
    let server = MockServer::start(|_| {
        Reply::openai_text(
            &common::code("submit(`${context.line_count()} lines`);"),
            50,
            10,
        )
    });
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rlm"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for index in 0..completions {
        let args: Vec<String> = command
            .iter()
            .map(|a| {
                a.replace("/data/", &format!("{}/", data.display()))
                    .replace("/results/", &format!("{}/", results.display()))
            })
            .collect();
        // Only what the pod would have: Kubernetes sets
        // JOB_COMPLETION_INDEX, the secret gives the endpoint.
        let mut c = Command::new(&args[0]);
        c.args(&args[1..])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("OPENAI_BASE_URL", server.openai_url());
        let (code, _, err) = common::output(&mut c);
        assert_eq!(code, 0, "pod {index}: {err}");
    }

    let merged = dir.path().join("results.jsonl");
    let out = Command::new("sh")
        .arg(repo().join("dist/slurm/merge.sh"))
        .arg(&results)
        .arg(completions.to_string())
        .arg(&merged)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let lines = common::jsonl(&merged);
    let ids: BTreeSet<&str> = lines.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!((lines.len(), ids.len()), (TASKS, TASKS));
    for r in &lines {
        let i: usize = r["id"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(r["status"], "submitted", "{r}");
        assert_eq!(r["answer"], format!("{} lines", i % 4 + 1).as_str(), "{r}");
    }
    // Every shard ran its share, and only it.
    for index in 0..completions {
        for r in common::jsonl(&results.join(format!("part-{index}.jsonl"))) {
            assert_eq!(
                rlm::batch::shard_of(r["id"].as_str().unwrap(), completions),
                index
            );
        }
    }
}
