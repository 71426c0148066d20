//! HTTP routes: the embedded web client, meeting links, the WebSocket.

use aconfi_core::protocol::MAX_MESSAGE_BYTES;
use aconfi_core::RoomName;
use axum::body::Body;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use crate::config::FrameAncestors;
use crate::AppState;

/// The browser client, compiled into the binary so one file is the whole server.
#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// The Content-Security-Policy, made once at start: same-origin only (no
/// third-party script, style, font or connection), and framed only by the
/// sites `--frame-ancestors` names. Its sources are checked when the flag
/// is parsed ([`FrameAncestors`]), so they cannot add directives. In a
/// cluster the page may also connect to the other live `nodes` (plain
/// `https://host[:port]` origins, checked when read from Redis), where a
/// client may be sent for its room.
pub fn content_security_policy(frame_ancestors: &FrameAncestors, nodes: &[String]) -> String {
    let mut connect = String::from("'self'");
    for node in nodes {
        // CSP3 lets an https source match wss too; Firefox and Chromium
        // are given both anyway.
        connect.push_str(&format!(" {node} wss://{}", node.trim_start_matches("https://")));
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
media-src 'self' blob:; connect-src {connect}; object-src 'none'; base-uri 'none'; frame-ancestors {frame_ancestors}; \
form-action 'self'"
    )
}

/// The router with every route A-Confi serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/new", get(new_meeting))
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/stream/{room}", get(stream_status))
        // Browsers ask for these by themselves; answer instead of a 400 page.
        .route(
            "/favicon.ico",
            get(|| async { serve_asset("favicon.svg").unwrap_or_else(|| StatusCode::NOT_FOUND.into_response()) }),
        )
        // Meeting links are secrets: ask crawlers to index nothing.
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /\n" }))
        .route("/static/{*path}", get(asset))
        .route("/{room}", get(meeting))
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(state.clone(), security_headers))
        .with_state(state)
}

/// What every feature other than the meeting's own is set to: off.
const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), autoplay=(self), \
    clipboard-write=(self), accelerometer=(), bluetooth=(), geolocation=(), gyroscope=(), hid=(), \
    magnetometer=(), midi=(), payment=(), publickey-credentials-get=(), serial=(), usb=(), \
    xr-spatial-tracking=(), fullscreen=(self), picture-in-picture=(), encrypted-media=(), \
    idle-detection=(), screen-wake-lock=()";

async fn security_headers(State(state): State<AppState>, mut res: Response) -> Response {
    let h = res.headers_mut();
    // Only with the operator's certificate: on the generated one, HSTS would
    // stop browsers from letting the user past its warning for a year.
    if state.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    // No other site's window keeps a handle on a meeting page (or it on theirs).
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    let csp = match &state.cluster {
        // This node's own URL too: a page served through a balancer has
        // the balancer as its 'self', and may be sent here.
        Some(c) => HeaderValue::from_str(&content_security_policy(&state.frame_ancestors, &c.connectable()))
            .unwrap_or_else(|_| state.csp.clone()),
        None => state.csp.clone(),
    };
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    // Meeting links are secrets: never send them on as a Referer.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("permissions-policy", HeaderValue::from_static(PERMISSIONS_POLICY));
    res
}

/// Whether a meeting is being streamed live, for the prejoin screen: people
/// are told before they join. That a meeting is live is public anyway (it
/// is on the ingest's site); nothing else about the room is revealed, and a
/// room that does not exist answers the same as one not streaming.
async fn stream_status(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    let Ok(room) = RoomName::parse(&room) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let live = state.shards.is_streaming(&room).await;
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(serde_json::json!({ "live": live }))).into_response()
}

async fn index(State(state): State<AppState>) -> Response {
    page(&state)
}

async fn meeting(State(state): State<AppState>, Path(room): Path<String>, headers: HeaderMap) -> Response {
    match RoomName::parse(&room) {
        Ok(_) => page(&state),
        Err(_) => {
            let t = texts(&headers);
            error_page(StatusCode::BAD_REQUEST, t.invalid_title, t.invalid_detail, t)
        }
    }
}

/// The error pages' words, in German when the browser prefers it (the web
/// client has its own strings; these pages are served before it runs).
struct Texts {
    lang: &'static str,
    invalid_title: &'static str,
    invalid_detail: &'static str,
    not_found_title: &'static str,
    not_found_detail: &'static str,
    home: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    invalid_title: "This meeting link is not valid",
    invalid_detail: "A meeting name has 3 to 64 characters: letters a-z, digits, '-' and '_'.",
    not_found_title: "Not found",
    not_found_detail: "There is nothing at this address.",
    home: "Start or join a meeting",
};

const DE: Texts = Texts {
    lang: "de",
    invalid_title: "Dieser Konferenz-Link ist nicht gültig",
    invalid_detail: "Ein Konferenzname hat 3 bis 64 Zeichen: Buchstaben a-z, Ziffern, „-“ und „_“.",
    not_found_title: "Nicht gefunden",
    not_found_detail: "Unter dieser Adresse gibt es nichts.",
    home: "Konferenz starten oder beitreten",
};

fn texts(headers: &HeaderMap) -> &'static Texts {
    let first = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or("");
    if first.trim().to_ascii_lowercase().starts_with("de") {
        &DE
    } else {
        &EN
    }
}

async fn new_meeting() -> Redirect {
    let name = RoomName::generate(rand::random());
    Redirect::to(&format!("/{}", name.as_str()))
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host =
            headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
        // A page of another node of the cluster: its client was sent here.
        let node = |o: &str| state.cluster.as_ref().is_some_and(|c| c.is_node_origin(o));
        if !origin.to_str().is_ok_and(|o| state.origins.allow(o, host) || node(o)) {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    let Some(slot) = state.connections.take(peer.ip()) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // Signaling is a few small messages: tungstenite's default 128 KiB
    // read and write buffers per connection would dominate a participant's
    // memory. Larger messages (an SDP) still fit; the buffers grow.
    ws.read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(MAX_MESSAGE_BYTES * 2)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| crate::ws::connection(socket, peer.ip(), slot, state))
}

/// Which pages may open the signaling WebSocket. A browser always sends
/// `Origin` on a WebSocket; pages of other sites are refused, so no foreign
/// page can join meetings in a visitor's name. Clients that are not
/// browsers send no `Origin` and are let in.
#[derive(Clone, Default)]
pub struct Origins {
    /// The operator's certificate (DER), when `--cert` was given: a page is
    /// ours if the certificate is valid for its host. `None` for the
    /// generated certificate.
    cert: Option<Arc<Vec<u8>>>,
    /// `--origin`: exact origins allowed besides (a reverse proxy's name).
    extra: Vec<String>,
    /// `--domain`: the names the ACME certificate is for (lower case).
    domains: Vec<String>,
}

impl Origins {
    pub fn new(cert: Option<Vec<u8>>, domains: Vec<String>, extra: &[String]) -> Self {
        let extra = extra.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect();
        Origins { cert: cert.map(Arc::new), extra, domains }
    }

    /// Whether a page of `origin` may connect; `host` is the request's Host.
    fn allow(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.extra.contains(&origin) {
            return true;
        }
        // Only pages served over HTTPS: we serve nothing else.
        let Some(authority) = origin.strip_prefix("https://") else { return false };
        // The names our ACME certificate is for, whatever the port.
        if !self.domains.is_empty() {
            return self.domains.iter().any(|d| d == host_of(authority));
        }
        match &self.cert {
            // Not the Host header: a page on a name that resolves to us (DNS
            // rebinding) sends its own name there. Only names our
            // certificate is valid for, whatever the port.
            Some(der) => cert_names(der, host_of(authority)),
            // The generated certificate is valid for no name a browser
            // accepts by itself: the user accepted it for the name they
            // typed, and a page on any other name cannot get past the
            // certificate warning. So the page's own host is ours.
            None => host.is_some_and(|h| h.eq_ignore_ascii_case(authority)),
        }
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// Whether the certificate is valid for `host` (a DNS name or an address).
fn cert_names(der: &[u8], host: &str) -> bool {
    use rustls::pki_types::{CertificateDer, ServerName};
    let der = CertificateDer::from(der);
    let (Ok(cert), Ok(name)) = (webpki::EndEntityCert::try_from(&der), ServerName::try_from(host)) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve_asset(&path).unwrap_or_else(|| not_found_page(&headers))
}

async fn not_found(headers: HeaderMap) -> Response {
    not_found_page(&headers)
}

fn not_found_page(headers: &HeaderMap) -> Response {
    let t = texts(headers);
    error_page(StatusCode::NOT_FOUND, t.not_found_title, t.not_found_detail, t)
}

fn page(state: &AppState) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(state.page.clone()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The operator's settings the page needs before it asks for the camera,
/// as they reach it: JSON in the `aconfi-settings` meta element of
/// index.html (web/js/settings.js reads it; a `<meta>` is data, so the
/// Content-Security-Policy's "no inline script" holds).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageSettings {
    /// `--camera-height`.
    pub camera_height: u16,
}

/// The meta element of index.html that carries [`PageSettings`], as the
/// file has it (the defaults).
const SETTINGS_META: &str = r#"<meta name="aconfi-settings" content="{}">"#;

/// index.html with `settings` in its meta element, made once at start.
pub fn index_page(settings: &PageSettings) -> anyhow::Result<axum::body::Bytes> {
    let file = Assets::get("index.html").ok_or_else(|| anyhow::anyhow!("index.html is not embedded"))?;
    let html = std::str::from_utf8(&file.data)?;
    anyhow::ensure!(html.contains(SETTINGS_META), "index.html has no {SETTINGS_META}");
    // An attribute value in double quotes: its quotes and ampersands as
    // entities (the JSON of numbers has none today; URLs will).
    let json = serde_json::to_string(settings)?
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let meta = format!(r#"<meta name="aconfi-settings" content="{json}">"#);
    Ok(html.replacen(SETTINGS_META, &meta, 1).into())
}

fn serve_asset(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = file.metadata.mimetype();
    Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(file.data.into_owned()))
        .ok()
}

/// A small self-contained error page (no user input echoed back).
fn error_page(status: StatusCode, title: &str, detail: &str, t: &Texts) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title} – A-Confi</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">\
<link rel=\"stylesheet\" href=\"/static/style.css\"></head><body class=\"error-page\">\
<main class=\"card\"><h1>{title}</h1><p>{detail}</p><p><a href=\"/\">{home}</a></p></main></body></html>",
        lang = t.lang,
        home = t.home,
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_operators_settings_in_its_meta_element() {
        let page = index_page(&PageSettings { camera_height: 540 }).unwrap();
        let html = std::str::from_utf8(&page).unwrap();
        assert!(html.contains(r#"<meta name="aconfi-settings" content="{&quot;cameraHeight&quot;:540}">"#), "{html}");
        assert!(!html.contains(SETTINGS_META), "the defaults are replaced");
        // The rest of the page is the embedded file's.
        assert!(html.contains(r#"<script type="module" src="/static/js/app.js"></script>"#));
    }
}
