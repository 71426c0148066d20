//! The web client is compiled into the binary (rust-embed). Cargo notices
//! edits to files it already embedded, but not a file added to `web/`:
//! watching the folder rebuilds the embedding then too.

fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
