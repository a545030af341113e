//! Two `accord witness` processes and the real `accord serve` over HTTP on
//! loopback: every new checkpoint is cosigned by both, a forked checkpoint
//! signed with the log's own key is refused, and `accord audit verify`
//! requires the two cosignatures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use accord_audit::store::witnessed::WITNESSED_FILE;
use accord_audit::witness::AddCheckpoint;
use accord_audit::{Checkpoint, CosignatureKey, Signer, Tree, merkle::leaf_hash};
use accord_testkit::population;
use support::{Deployment, PATIENTS};

const ORIGIN: &str = "accord.test/audit";

fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .output()
        .unwrap()
}

/// A running `accord witness`.
struct WitnessProcess {
    child: Child,
    addr: SocketAddr,
    key: String,
}

impl WitnessProcess {
    fn start(dir: &Path, name: &str, log_key: &str) -> WitnessProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["witness", "--listen", "127.0.0.1:0", "--name"])
            .arg(format!("witness.test/{name}"))
            .arg("--key")
            .arg(dir.join(format!("{name}.key")))
            .arg("--state")
            .arg(dir.join(format!("{name}-state")))
            .arg("--log-key")
            .arg(format!("{ORIGIN}={log_key}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut key, mut addr) = (None, None);
        let mut line = String::new();
        while addr.is_none() {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "witness {name} exited"
            );
            if let Some(k) = line.strip_prefix("witness key") {
                key = Some(k.trim().to_owned());
            }
            if let Some(a) = line.trim().strip_prefix("listening    http://") {
                addr = Some(a.parse().unwrap());
            }
        }
        WitnessProcess {
            child,
            addr: addr.unwrap(),
            key: key.unwrap(),
        }
    }

    /// POSTs an add-checkpoint body; the status and body of the answer.
    fn post(&self, body: &str) -> (u16, String) {
        let mut tcp = TcpStream::connect(self.addr).unwrap();
        write!(
            tcp,
            "POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cosigners(note: &str, keys: &[&str]) -> usize {
    keys.iter()
        .filter(|k| CosignatureKey::parse(k).unwrap().verify(note).is_ok())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_witnesses_cosign_every_checkpoint_and_refuse_a_fork() {
    let keys = tempfile::tempdir().unwrap();
    let log_key = keys.path().join("log.key");
    let made = accord(&[
        "audit",
        "keygen",
        "--dir",
        &keys.path().join("unused-audit").display().to_string(),
        "--signing-key",
        &log_key.display().to_string(),
        "--name",
        ORIGIN,
    ]);
    assert!(made.status.success(), "{made:?}");
    let log_pub = std::fs::read_to_string(keys.path().join("log.pub")).unwrap();
    let w1 = WitnessProcess::start(keys.path(), "w1", log_pub.trim());
    let w2 = WitnessProcess::start(keys.path(), "w2", log_pub.trim());
    let deployment = Deployment::new(&format!(
        "[audit]\nsigning_key = \"{}\"\n\n[[audit.witness]]\nurl = \"http://{}/\"\nkey = \"{}\"\n\n[[audit.witness]]\nurl = \"http://{}\"\nkey = \"{}\"\n",
        log_key.display(),
        w1.addr,
        w1.key,
        w2.addr,
        w2.key
    ))
    .await;
    let serve = tokio::task::block_in_place(|| deployment.serve(0));
    let client = deployment.client();
    for i in 1..=PATIENTS {
        let url = serve.url(&format!("Patient/{}", population::patient_id(i)));
        let response = client.get(&url, "TREAT").await.unwrap();
        assert!(response.header("x-audit-seq").is_some());
    }
    // Checkpoints follow within a second; both witnesses cosign the one
    // covering every record.
    let audit = deployment.audit_dir();
    let witnessed = audit.join(WITNESSED_FILE);
    let deadline = Instant::now() + Duration::from_secs(20);
    let note = loop {
        let note = std::fs::read_to_string(&witnessed).unwrap_or_default();
        let size = Checkpoint::parse_note(&note).map_or(0, |cp| cp.size);
        if size >= PATIENTS as u64 && cosigners(&note, &[&w1.key, &w2.key]) == 2 {
            break note;
        }
        assert!(
            Instant::now() < deadline,
            "not witnessed: {note}\n{}",
            serve.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let witnessed_size = Checkpoint::parse_note(&note).unwrap().size;

    // A fork signed with the log's own key: another history of the same
    // size and longer, proved from the witnessed size.
    let signer = Signer::parse(&std::fs::read_to_string(&log_key).unwrap()).unwrap();
    let mut fork = Tree::new();
    for i in 0..witnessed_size + 3 {
        fork.push(leaf_hash(format!("forged {i}").as_bytes()));
    }
    let fork_note = signer.sign(&Checkpoint {
        origin: ORIGIN.into(),
        size: fork.size(),
        root: fork.root(),
    });
    let body = |old: u64| {
        AddCheckpoint {
            old,
            proof: fork.consistency_proof(old, fork.size()).unwrap(),
            note: fork_note.clone(),
        }
        .encode()
    };
    for w in [&w1, &w2] {
        let (status, answer) = w.post(&body(witnessed_size));
        assert_eq!(status, 422, "a fork is not consistent: {answer}");
        let (status, answer) = w.post(&body(0));
        assert_eq!(status, 409, "{answer}");
        assert!(answer.trim().parse::<u64>().unwrap() >= witnessed_size);
    }

    // verify requires both cosignatures; three cannot be had.
    let audit_arg = audit.display().to_string();
    let log_pub_path = keys.path().join("log.pub").display().to_string();
    let verify = |required: &str| {
        accord(&[
            "audit",
            "verify",
            "--dir",
            &audit_arg,
            "--key",
            &log_pub_path,
            "--witness-key",
            &w1.key,
            "--witness-key",
            &w2.key,
            "--witnesses-required",
            required,
        ])
    };
    let ok = verify("2");
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("cosigned by 2"), "{out}");
    assert!(!verify("3").status.success());

    // Exported with its cosignatures, the checkpoint checks the log later.
    let kept = keys.path().join("kept.checkpoint");
    let exported = accord(&[
        "audit",
        "checkpoint",
        "export",
        "--dir",
        &audit_arg,
        "--out",
        &kept.display().to_string(),
    ]);
    assert!(exported.status.success(), "{exported:?}");
    assert!(
        cosigners(
            &std::fs::read_to_string(&kept).unwrap(),
            &[&w1.key, &w2.key]
        ) >= 1
    );
    tokio::task::block_in_place(|| serve.stop());
    let against = accord(&[
        "audit",
        "verify",
        "--dir",
        &audit_arg,
        "--key",
        &log_pub_path,
        "--against",
        &kept.display().to_string(),
    ]);
    assert!(against.status.success(), "{against:?}");
}
