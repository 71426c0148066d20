//! `aconfi --version` names the version and the commit the binary was built
//! from, so that an operator can say exactly what runs.

use std::process::Command;

#[test]
fn version_names_the_release_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_aconfi")).arg("--version").output().expect("runs aconfi");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    // The commit of this checkout, as git names it; outside one, `unknown`.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(printed.trim(), format!("aconfi {} (commit {head})", env!("CARGO_PKG_VERSION")));
}
