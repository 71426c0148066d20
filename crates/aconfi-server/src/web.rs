//! HTTP routes: the embedded web client, meeting links, the WebSocket.

use aconfi_core::protocol::MAX_MESSAGE_BYTES;
use aconfi_core::RoomName;
use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use crate::AppState;

/// The browser client, compiled into the binary so one file is the whole server.
#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// Same-origin only: no third-party script, style, font or connection.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'";

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
        .with_state(state)
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // Meeting links are secrets: never send them on as a Referer.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self)"),
    );
    res
}

/// Whether a meeting is being streamed live, for the prejoin screen: people
/// are told before they join. That a meeting is live is public anyway (it
/// is on the ingest's site); nothing else about the room is revealed, and a
/// room that does not exist answers the same as one not streaming.
async fn stream_status(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if RoomName::parse(&room).is_err() || state.core.send(crate::media::CoreCmd::IsStreaming(room, tx)).await.is_err() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let live = rx.await.unwrap_or(false);
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(serde_json::json!({ "live": live }))).into_response()
}

async fn index() -> Response {
    page()
}

async fn meeting(Path(room): Path<String>, headers: HeaderMap) -> Response {
    match RoomName::parse(&room) {
        Ok(_) => page(),
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
    if !same_origin(&headers, &uri) {
        return StatusCode::FORBIDDEN.into_response();
    }
    // Signaling is a few small messages: tungstenite's default 128 KiB
    // read and write buffers per connection would dominate a participant's
    // memory. Larger messages (an SDP) still fit; the buffers grow.
    ws.read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(MAX_MESSAGE_BYTES * 2)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| crate::ws::connection(socket, peer.ip(), state))
}

/// A browser always sends `Origin` on a WebSocket; refuse pages of other
/// sites so no foreign page can join meetings in a visitor's name. Clients
/// that are not browsers send no `Origin` and are let in.
fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    let origin_host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
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

fn page() -> Response {
    serve_asset("index.html").unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
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
