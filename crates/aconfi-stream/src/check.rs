//! `aconfi-stream --check`: can this machine stream at all?

use crate::pipeline::ELEMENTS;
use gio::prelude::*;
use gstreamer as gst;

/// `Ok` when every element the pipeline uses can be made and RTMPS is
/// possible; otherwise a short reason naming the Debian package to install.
pub fn check() -> Result<(), String> {
    gst::init().map_err(|_| "GStreamer could not be initialised (Debian: libgstreamer1.0-0)".to_string())?;
    if !version_ok() {
        let (major, minor, micro, _) = gst::version();
        return Err(format!("GStreamer 1.20 or newer is needed, this is {major}.{minor}.{micro}"));
    }
    // Making one (not just finding its factory) also catches plugins that
    // are installed but fail to load.
    let missing: Vec<&(&str, &str)> =
        ELEMENTS.iter().filter(|(element, _)| gst::ElementFactory::make(element).build().is_err()).collect();
    if !missing.is_empty() {
        return Err(missing_text(&missing));
    }
    // rtmp2sink does TLS through GIO; without glib-networking GIO has a
    // dummy backend that supports no TLS at all.
    if !gio::TlsBackend::default().supports_tls() {
        return Err("RTMPS needs GIO's TLS backend (Debian: glib-networking)".into());
    }
    Ok(())
}

/// The pipeline sets properties that appeared in GStreamer 1.20 (appsrc
/// `leaky-type`, aggregator `ignore-inactive-pads`, compositor
/// `sizing-policy`, depayloader `request-keyframe`, …); setting a property
/// an element does not have would abort.
pub fn version_ok() -> bool {
    let (major, minor, _, _) = gst::version();
    (major, minor) >= (1, 20)
}

/// "GStreamer element x264enc is missing (Debian: gstreamer1.0-plugins-ugly)",
/// or the same for several elements and packages.
fn missing_text(missing: &[&(&str, &str)]) -> String {
    let elements: Vec<&str> = missing.iter().map(|(e, _)| *e).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    packages.sort_unstable();
    packages.dedup();
    let (noun, verb) = if elements.len() == 1 { ("element", "is") } else { ("elements", "are") };
    format!("GStreamer {noun} {} {verb} missing (Debian: {})", elements.join(", "), packages.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing() {
        assert_eq!(
            missing_text(&[&("x264enc", "gstreamer1.0-plugins-ugly")]),
            "GStreamer element x264enc is missing (Debian: gstreamer1.0-plugins-ugly)"
        );
        assert_eq!(
            missing_text(&[&("h264parse", "gstreamer1.0-plugins-bad"), &("rtmp2sink", "gstreamer1.0-plugins-bad"), &("x264enc", "gstreamer1.0-plugins-ugly")]),
            "GStreamer elements h264parse, rtmp2sink, x264enc are missing (Debian: gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly)"
        );
    }
}
