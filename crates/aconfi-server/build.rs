//! The web client is compiled into the binary (rust-embed). Cargo notices
//! edits to files it already embedded, but not a file added to `web/`:
//! watching the folder rebuilds the embedding then too.
//!
//! `aconfi --version` names the commit it was built from
//! (`ACONFI_COMMIT`: `git rev-parse --short=12 HEAD`, or `unknown` outside
//! a git checkout, e.g. from a source tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=../../web");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ACONFI_COMMIT={commit}");
    // A new commit rebuilds this: HEAD (a checkout) and the branch it names
    // (a commit), wherever git keeps them (a worktree has its own HEAD).
    for what in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", what]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
