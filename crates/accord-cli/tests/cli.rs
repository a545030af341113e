//! The `accord` binary as users run it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::process::Command;

fn accord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_accord"))
}

#[test]
fn demo_once_tours_permits_and_denials_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        accord()
            .args(["demo", "--once", "--patients", "30", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("→ 200"), "{stdout}");
    assert!(
        stdout.contains(
            "rule: permit: agreement `care-coordination-2026` v1 grant `clinical-record`"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("is suspended"), "{stdout}");
    assert!(
        stdout.contains("does not permit this purpose of use"),
        "{stdout}"
    );
    assert!(stdout.contains("→ 401"), "{stdout}");
    for kept in [
        "pki/ca.pem",
        "pki/clients/maple-primary.pem",
        "policies/partners.toml",
        "accord.toml",
        "audit/segments/seg-00000000000000000001.log",
        "audit/checkpoint",
        "audit/signing.pub",
        "fixtures/Patient.ndjson",
    ] {
        assert!(dir.path().join(kept).exists(), "{kept} was not kept");
    }

    // A second run reuses the directory and continues the same audit log.
    let second = run();
    assert!(second.status.success());
    let log = accord_audit::read_records(&dir.path().join("audit")).unwrap();
    assert_eq!(
        log.len(),
        20,
        "two tours of nine requests each, and each tour's write leaves its intent first"
    );
}

#[test]
fn serve_refuses_to_start_on_invalid_policies_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies/agreements")).unwrap();
    std::fs::write(
        dir.path().join("policies/partners.toml"),
        "[[partner]]\nid = \"a\"\nname = \"A\"\nstatus = \"actve\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("accord.toml"), "").unwrap();
    let out = accord()
        .arg("serve")
        .arg("--config")
        .arg(dir.path().join("accord.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("partners.toml:4:10: `actve` is not a value of"),
        "{stderr}"
    );
}

#[test]
fn serve_reports_config_errors_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accord.toml"),
        "[gateway]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = accord()
        .arg("serve")
        .arg("--config")
        .arg(dir.path().join("accord.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("accord.toml:2:10:"), "{stderr}");
}

/// `accord … | head` closes the pipe early: the command must end quietly
/// and successfully, not panic the way `println!` does on a closed pipe.
#[test]
fn commands_end_quietly_when_the_reader_closes_the_pipe() {
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    let commands: [&[&str]; 4] = [
        &["policy", "check", policies],
        &[
            "policy",
            "show",
            "care-coordination-2026",
            "--dir",
            policies,
        ],
        &["policy", "test", policies],
        &["policy", "export", "--dir", policies],
    ];
    for args in commands {
        // The read end is closed before the command starts, so its first
        // write fails with EPIPE every time (no race with a reader).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = accord().args(args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
}
