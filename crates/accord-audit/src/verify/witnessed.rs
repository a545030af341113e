//! Checking the latest witnessed checkpoint: signed by the log, reproduced
//! by the log's records, and cosigned by enough of the witnesses the
//! auditor trusts. A log rewritten and re-signed with the log's own key
//! fails here: its records no longer hash to the root the witnesses
//! cosigned, and no witness cosigns the rewritten tree.

use std::path::Path;

use super::{Placed, VerifyReport, check_checkpoint};
use crate::AuditError;
use crate::note::Verifier;
use crate::store::witnessed::{WITNESSED_FILE, read_witnessed};
use crate::verify::VerifyOptions;

/// The latest witnessed checkpoint as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    /// Names of the trusted witnesses whose cosignature verifies.
    pub cosigned_by: Vec<String>,
}

pub(super) fn check(
    dir: &Path,
    tree: &Placed<'_>,
    key: &Verifier,
    options: &VerifyOptions,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    if options.witness_keys.is_empty() && options.witnesses_required == 0 {
        return Ok(());
    }
    let Some(note) = read_witnessed(dir)? else {
        if options.witnesses_required > 0 {
            report.problem(
                WITNESSED_FILE,
                "missing: no checkpoint of this log was witnessed (or the file was removed)",
            );
        }
        return Ok(());
    };
    let problems = report.problems.len();
    let cp = check_checkpoint(tree, key, &note, WITNESSED_FILE, report);
    let cosigned_by: Vec<String> = options
        .witness_keys
        .iter()
        .filter(|k| k.verify(&note).is_ok())
        .map(|k| k.name().to_owned())
        .collect();
    if let Some(cp) = &cp {
        report.witnessed = Some(Witnessed {
            size: cp.size,
            cosigned_by: cosigned_by.clone(),
        });
    } else if report.problems.len() > problems {
        report.problem(
            WITNESSED_FILE,
            "the log does not reproduce the checkpoint the witnesses cosigned: it was rewritten after they saw it",
        );
    }
    if cosigned_by.len() < options.witnesses_required {
        report.problem(
            WITNESSED_FILE,
            format!(
                "{} valid cosignatures by the given witness keys, {} required",
                cosigned_by.len(),
                options.witnesses_required
            ),
        );
    }
    Ok(())
}
