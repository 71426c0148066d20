//! Embedding a meeting in another site (docs/embedding.md): which sites
//! may frame A-Confi is `--frame-ancestors`, and nothing else can get into
//! the Content-Security-Policy through it.

mod common;

use std::process::{Command, Stdio};

/// The Content-Security-Policy's directives, by name.
fn directives(csp: &str) -> Vec<(String, String)> {
    csp.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let (name, value) = d.split_once(' ').unwrap_or((d, ""));
            (name.to_string(), value.to_string())
        })
        .collect()
}

async fn csp_of(port: u16, path: &str) -> String {
    let (code, headers) = common::https_head(port, path).await;
    assert!(code == 200 || code == 404, "{path}: {code}");
    headers.get("content-security-policy").cloned().expect("a content security policy")
}

#[tokio::test]
async fn by_default_only_our_own_pages_may_frame_a_meeting() {
    let server = common::server().await;
    common::remember_cert(&server);
    let csp = csp_of(server.https_addr.port(), "/some-meeting").await;
    let d = directives(&csp);
    assert!(d.contains(&("frame-ancestors".into(), "'self'".into())), "{csp}");
    assert!(d.contains(&("script-src".into(), "'self'".into())), "{csp}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_configured_sites_may_frame_every_page() {
    let sources = "https://Intranet.example.org http://127.0.0.1:8080 'self'";
    let server = common::server_with(|c| c.frame_ancestors = sources.parse().unwrap()).await;
    common::remember_cert(&server);
    let port = server.https_addr.port();
    let default_csp = directives(&aconfi_server::web::content_security_policy(&"'self'".parse().unwrap(), &[]));
    for path in ["/", "/some-meeting", "/static/js/app.js", "/nothing/here"] {
        let csp = csp_of(port, path).await;
        let d = directives(&csp);
        let ancestors: Vec<_> = d.iter().filter(|(n, _)| n == "frame-ancestors").map(|(_, v)| v.as_str()).collect();
        assert_eq!(ancestors, ["https://intranet.example.org http://127.0.0.1:8080 'self'"], "{path}: {csp}");
        // Every other directive is as it always is.
        let others =
            |d: &[(String, String)]| d.iter().filter(|(n, _)| n != "frame-ancestors").cloned().collect::<Vec<_>>();
        assert_eq!(others(&d), others(&default_csp), "{path}: {csp}");
    }
    server.shutdown().await;
}

/// Runs the real binary with `args` and `env`; it must refuse to start:
/// a clear message and a non-zero exit, no panic, nothing served.
fn refused(args: &[&str], env: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aconfi"));
    // Ports that would collide with nothing: it must not get as far as binding.
    cmd.args(["--listen", "127.0.0.1:0", "--media-port", "0"]).args(args);
    cmd.env_remove("ACONFI_FRAME_ANCESTORS");
    if let Some(value) = env {
        cmd.env("ACONFI_FRAME_ANCESTORS", value);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("runs aconfi");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "exit status, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("--frame-ancestors"), "the message names the flag: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "nothing started");
    stderr
}

#[test]
fn a_value_that_could_add_directives_or_widen_the_list_is_refused() {
    let stderr = refused(&["--frame-ancestors", "https://a.example; script-src *"], None);
    assert!(stderr.contains("is not allowed"), "{stderr}");
    refused(&["--frame-ancestors", "https://a.example,https://b.example"], None);
    refused(&["--frame-ancestors", "https://*.example.org"], None);
    refused(&["--frame-ancestors", "https://a.example/embed"], None);
    refused(&["--frame-ancestors", "*"], None);
    refused(&["--frame-ancestors", ""], None);
    // The variable is held to the same rules as the flag.
    refused(&[], Some("'self' https://a.example 'unsafe-inline'"));
}
