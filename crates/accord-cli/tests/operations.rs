//! Operations through the `accord` binary: JSON logs without patient data,
//! `accord config check`, and the configuration reference kept in step with
//! the config structs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::process::Command;

use accord_gateway::config::AccordConfig;

fn accord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_accord"))
}

#[test]
fn the_demo_logs_one_json_line_per_request_and_no_patient_ids() {
    let dir = tempfile::tempdir().unwrap();
    let output = accord()
        .args(["demo", "--once", "--patients", "30", "--dir"])
        .arg(dir.path())
        .env("ACCORD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The tour on stdout names patients; the log must not.
    assert!(
        stdout.contains("pat-0"),
        "the tour used patient ids: {stdout}"
    );
    assert!(
        !stderr.contains("pat-0"),
        "a patient id reached the log:\n{stderr}"
    );
    assert!(
        !stderr.contains("patient="),
        "a query reached the log:\n{stderr}"
    );

    let mut requests = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if event["target"] == "accord::access" {
            requests += 1;
            let fields = &event["fields"];
            for key in ["request_id", "partner", "decision", "status", "latency_ms"] {
                assert!(!fields[key].is_null(), "{key} missing: {line}");
            }
            assert!(fields.get("target").is_none(), "{line}");
        }
    }
    let tour_steps = stdout.matches("→ ").count();
    assert!(
        requests >= tour_steps && requests > 5,
        "{requests} access lines for {tour_steps} steps:\n{stderr}"
    );
}

#[test]
fn config_check_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accord.toml");
    std::fs::write(
        &path,
        "[gateway]\nlisten = \"0.0.0.0:9000\"\n[admin]\nenabled = true\n",
    )
    .unwrap();
    let output = accord()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let effective = AccordConfig::parse(&stdout).expect("the output is itself a valid config");
    assert_eq!(effective.gateway.listen.to_string(), "0.0.0.0:9000");
    assert!(effective.admin.enabled);
    assert_eq!(
        effective.policies.dir,
        dir.path().join("policies"),
        "paths are shown resolved"
    );

    std::fs::write(&path, "[admin]\nlisten = \"127.0.0.1:1\"\ntoken = \"x\"\n").unwrap();
    let output = accord()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("accord.toml:3:1:"), "{stderr}");
    assert!(stderr.contains("unknown field `token`"), "{stderr}");
}

/// Every key of the configuration structs appears in docs/configuration.md,
/// so the reference cannot fall behind the code.
#[test]
fn the_configuration_reference_documents_every_key() {
    let mut config = AccordConfig::default();
    // Optional keys are absent from a default serialization: fill them.
    config.gateway.public_url = Some("https://x".to_owned());
    config.gateway.upstream_ca = Some(PathBuf::from("ca.pem"));
    config.admin.token_file = Some(PathBuf::from("token"));
    let value = toml::Value::try_from(&config).unwrap();
    let mut keys = Vec::new();
    collect_keys(&value, String::new(), &mut keys);
    assert!(keys.len() > 20, "{keys:?}");

    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let missing: Vec<_> = keys
        .iter()
        .filter(|key| !doc.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "undocumented keys in {}: {missing:?}",
        doc_path.display()
    );
}

fn collect_keys(value: &toml::Value, prefix: String, keys: &mut Vec<String>) {
    if let toml::Value::Table(table) = value {
        for (name, child) in table {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if child.is_table() {
                collect_keys(child, path, keys);
            } else {
                keys.push(path);
            }
        }
    }
}

/// `accord serve` with the admin listener: healthz answers, SIGHUP reloads,
/// SIGTERM stops it cleanly (exit 0).
#[test]
fn serve_answers_health_reloads_on_sighup_and_exits_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let demo = accord()
        .args(["demo", "--once", "--patients", "20", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(demo.status.success());
    let config = dir.path().join("accord.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).unwrap();

    let mut child = accord()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("ACCORD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut admin = None;
    let mut line = String::new();
    while admin.is_none() {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "serve exited early"
        );
        admin = line
            .trim()
            .strip_prefix("accord: admin on http://")
            .map(str::to_owned);
    }
    let admin = admin.unwrap();
    let mut tcp = std::net::TcpStream::connect(&admin).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );

    let pid = child.id().to_string();
    let kill = |signal: &str| {
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    kill("-HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    kill("-TERM");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}\n{rest}\n{stderr}");
    assert!(rest.contains("accord: shutting down"), "{rest}");
    assert!(stderr.contains("policies reloaded"), "{stderr}");
    assert!(
        stderr.contains("server certificate and partner CA bundle reloaded"),
        "{stderr}"
    );
}
