//! Everything at once for a federation on one machine: the same steps an
//! operator and each hospital take separately, in one directory tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::CertsError;
use crate::files::{Secrecy, ensure_absent, read_pem, write_new};
use crate::issue::{CA_DAYS, CaFiles, LEAF_DAYS, create_ca, create_server, request, sign};
use crate::name::check_name;

/// The name of the coordinator's certificate in a demo tree.
const COORDINATOR: &str = "coordinator";

/// What [`demo`] wrote:
///
/// ```text
/// DIR/ca/ca.pem, ca.key                              the consortium CA
/// DIR/coordinator/coordinator.pem, .key, ca.pem      the coordinator
/// DIR/<member>/<member>.key, .csr, .pem, ca.pem      each hospital
/// ```
#[derive(Debug, Clone)]
pub struct DemoLayout {
    /// The consortium CA.
    pub ca: CaFiles,
    /// The coordinator's directory.
    pub coordinator: PathBuf,
    /// Each member's directory, in the order given.
    pub members: Vec<PathBuf>,
}

/// Provisions a whole consortium under `out`: a CA, a coordinator certificate
/// for `sans`, and for each member a key and request made in its own
/// directory, then signed by the CA.
///
/// # Errors
/// A bad or repeated member name (`ca` and `coordinator` are taken), an
/// existing output file, or any error of the individual steps.
pub fn demo(out: &Path, members: &[String], sans: &[String]) -> Result<DemoLayout, CertsError> {
    let mut seen = BTreeSet::new();
    for member in members {
        check_name(member)?;
        if member == "ca" || member == COORDINATOR {
            return Err(CertsError::BadName {
                name: member.clone(),
                reason: "this name is taken by the demo layout (ca/, coordinator/)",
            });
        }
        if !seen.insert(member.as_str()) {
            return Err(CertsError::DuplicateMember {
                name: member.clone(),
            });
        }
    }
    let ca_dir = out.join("ca");
    let coordinator = out.join(COORDINATOR);
    // Refuse up front, so a second run cannot leave a half-written tree.
    let mut planned = vec![ca_dir.clone(), coordinator.clone()];
    planned.extend(members.iter().map(|m| out.join(m)));
    ensure_absent(&planned.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;

    let ca = create_ca(&ca_dir, "medfed consortium CA", CA_DAYS)?;
    create_server(&ca_dir, &coordinator, COORDINATOR, sans, LEAF_DAYS)?;
    let ca_pem = read_pem(&ca.cert)?;
    let mut dirs = Vec::with_capacity(members.len());
    for member in members {
        let dir = out.join(member);
        let csr = request(&dir, member)?;
        sign(
            &ca_dir,
            &csr,
            &dir.join(format!("{member}.pem")),
            Some(member),
            LEAF_DAYS,
        )?;
        write_new(&dir.join("ca.pem"), &ca_pem, Secrecy::Public)?;
        dirs.push(dir);
    }
    Ok(DemoLayout {
        ca,
        coordinator,
        members: dirs,
    })
}
