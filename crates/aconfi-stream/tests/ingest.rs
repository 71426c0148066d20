//! The worker against a real RTMP/RTMPS ingest (nginx + nginx-rtmp, see
//! tests/ingest/nginx.sh), fed by real encoders, read back with ffprobe and
//! ffmpeg. Needs nginx-light, libnginx-mod-rtmp, libnginx-mod-stream,
//! openssl, ffmpeg and gstreamer1.0-tools: a missing one fails the test with
//! the package to install.
//!
//! Every worker runs with `GST_DEBUG=*:6 RUST_LOG=debug G_MESSAGES_DEBUG=all`
//! and every test checks that its stream key is in nothing the worker wrote.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

const LIVE: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(10);

const RED: u32 = 0xffff_0000;
const BLUE: u32 = 0xff00_00ff;

/// Codecs, size, frame rate, keyframe spacing and sound of the published
/// stream.
#[test]
fn publishes_h264_aac_720p30_with_keyframes_every_2s_and_sound() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);
    let key = unique_key();
    let mut worker = Worker::start(&ingest.rtmp_url(&key), &key, &[]);
    worker.send(&sources(&[video_source(1, "Ada"), audio_source(2, "Ada")]));
    let _ada = Sender::start(&worker, 1, RED, Some(2));
    worker.wait_state("live", LIVE);

    let probe = probe(&ingest.rtmp_url(&key), 6);
    let streams = probe["streams"].as_array().expect("streams");
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").expect("an audio stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(1280), Some(720)));
    let rate: Vec<f64> = video["avg_frame_rate"].as_str().unwrap().split('/').map(|x| x.parse().unwrap()).collect();
    let fps = rate[0] / rate[1];
    assert!((29.0..=31.0).contains(&fps), "avg_frame_rate {fps}");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");

    // Frame rate and keyframe spacing as actually sent, from the packets.
    let vindex = video["index"].as_u64().unwrap();
    let packets: Vec<(f64, bool)> = probe["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .filter(|p| p["stream_index"].as_u64() == Some(vindex))
        .filter_map(|p| Some((p["pts_time"].as_str()?.parse().ok()?, p["flags"].as_str()?.contains('K'))))
        .collect();
    let (first, last) = (packets.first().unwrap().0, packets.last().unwrap().0);
    let measured = (packets.len() - 1) as f64 / (last - first);
    assert!(last - first > 4.0, "only {:.1} s of video read", last - first);
    assert!((27.0..=33.0).contains(&measured), "{measured:.1} frames per second sent");
    let keys: Vec<f64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    assert!(keys.len() >= 2, "keyframes at {keys:?}");
    for pair in keys.windows(2) {
        assert!(pair[1] - pair[0] <= 2.05, "keyframes {:.2} s apart: {keys:?}", pair[1] - pair[0]);
    }
    assert!(last - keys.last().unwrap() <= 2.05, "no keyframe in the last {:.2} s", last - keys.last().unwrap());

    let volume = mean_volume(&ingest.rtmp_url(&key), 3);
    assert!(volume > -50.0, "mean volume {volume} dB with a sine source in");
    worker.assert_key_not_written();
}

/// A second participant shows up in the picture when they join, and the
/// first one disappears when they leave, without the stream stopping.
#[test]
fn picture_follows_participants_joining_and_leaving() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);
    let key = unique_key();
    let url = ingest.rtmp_url(&key);
    let mut worker = Worker::start(&url, &key, &[]);
    worker.send(&sources(&[video_source(1, "Red")]));
    let _red = Sender::start(&worker, 1, RED, None);
    worker.wait_state("live", LIVE);
    poll_until(LIVE, "a frame with red and no blue", || {
        let (red, blue) = count_colours(&grab_frame(&url));
        (red > 100 && blue == 0).then_some(())
    });

    worker.send(&sources(&[video_source(1, "Red"), video_source(3, "Blue")]));
    worker.wait_event(SHORT, "a keyframe request for the new source", |v| v["ev"] == "keyframe" && v["ssrc"] == 3);
    let _blue = Sender::start(&worker, 3, BLUE, None);
    poll_until(LIVE, "a frame with red and blue", || {
        let (red, blue) = count_colours(&grab_frame(&url));
        (red > 100 && blue > 100).then_some(())
    });

    worker.send(&sources(&[video_source(3, "Blue")]));
    poll_until(LIVE, "a frame with blue and no red", || {
        let (red, blue) = count_colours(&grab_frame(&url));
        (red == 0 && blue > 100).then_some(())
    });
    let states: Vec<_> =
        worker.events().into_iter().filter(|v| v["ev"] == "state").map(|v| v["state"].clone()).collect();
    assert_eq!(states, vec!["starting", "live"], "the stream was interrupted");
}

/// rtmps:// through nginx's TLS proxy: the stream arrives. Without the
/// test-only switch, the self-signed certificate is refused.
#[test]
fn rtmps_publishes_through_tls_and_validates_certificates_by_default() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);

    let key = unique_key();
    let strict = Worker::start(&ingest.rtmps_url(&key), &key, &[]);
    strict.wait_stderr("an attempt to publish failed", LIVE);
    assert!(!strict.events().iter().any(|v| v["state"] == "live"), "published to an ingest with a bad certificate");
    drop(strict);

    let key = unique_key();
    let mut worker = Worker::start(&ingest.rtmps_url(&key), &key, &[("ACONFI_STREAM_INSECURE_TLS", "1")]);
    worker.send(&sources(&[video_source(1, "Ada"), audio_source(2, "Ada")]));
    let _ada = Sender::start(&worker, 1, RED, Some(2));
    worker.wait_state("live", LIVE);
    let probe = probe(&ingest.rtmp_url(&key), 2);
    let streams = probe["streams"].as_array().expect("streams");
    assert!(streams.iter().any(|s| s["codec_name"] == "h264" && s["width"] == 1280), "{probe}");
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"), "{probe}");
}

/// The worker connects to the address the server checked and nowhere
/// else: a host no DNS knows reaches the ingest through it, and a URL
/// naming the ingest itself, pinned to a closed port, never reaches it.
#[test]
fn the_worker_connects_only_to_the_address_the_server_checked() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);
    let key = unique_key();
    let unresolvable = format!("rtmp://ingest.aconfi.invalid:{}/live/{key}", ingest.rtmp_port);
    let at_ingest: std::net::SocketAddr = format!("127.0.0.1:{}", ingest.rtmp_port).parse().unwrap();
    let mut worker = Worker::start_pinned(&unresolvable, at_ingest, &key, &[]);
    worker.send(&sources(&[video_source(1, "Ada")]));
    let _ada = Sender::start(&worker, 1, RED, None);
    worker.wait_state("live", LIVE);
    let probe = probe(&ingest.rtmp_url(&key), 2);
    assert!(probe["streams"].as_array().is_some_and(|s| s.iter().any(|s| s["codec_name"] == "h264")), "{probe}");
    worker.send(&json!({"cmd": "stop"}));
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));

    let key = unique_key();
    let closed: std::net::SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let worker = Worker::start_pinned(&ingest.rtmp_url(&key), closed, &key, &[]);
    worker.wait_stderr("an attempt to publish failed", LIVE);
    assert!(!worker.events().iter().any(|v| v["state"] == "live"), "it published where the URL, not the pin, points");
}

/// The ingest dies mid-stream: the worker says so, and goes live again on
/// its own when the ingest is back.
#[test]
fn reconnects_when_the_ingest_comes_back() {
    require_tools();
    let _cpu = serial();
    let mut ingest = Ingest::start(None);
    let key = unique_key();
    let mut worker = Worker::start(&ingest.rtmp_url(&key), &key, &[]);
    worker.send(&sources(&[video_source(1, "Ada"), audio_source(2, "Ada")]));
    let _ada = Sender::start(&worker, 1, RED, Some(2));
    worker.wait_state("live", LIVE);

    ingest.kill();
    let event = worker.wait_state("reconnecting", LIVE);
    assert!(event["reason"].is_string(), "{event}");
    ingest.restart();
    worker.wait_state("live", Duration::from_secs(60));
    // The rebuilt pipeline asked the publisher for a fresh keyframe.
    let events = worker.events();
    let broke = events.iter().position(|v| v["state"] == "reconnecting").unwrap();
    assert!(events[broke..].iter().any(|v| v["ev"] == "keyframe" && v["ssrc"] == 1), "{events:?}");
    let probe = probe(&ingest.rtmp_url(&key), 2);
    assert!(probe["streams"].as_array().is_some_and(|s| s.iter().any(|s| s["codec_name"] == "h264")), "{probe}");
    worker.send(&json!({"cmd": "stop"}));
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));
}

/// `stop` ends the publish (the ingest's on_publish_done fires) and the
/// worker exits 0.
#[test]
fn stop_ends_the_publish_and_exits_0() {
    require_tools();
    let _cpu = serial();
    let hooks = Hooks::start();
    let ingest = Ingest::start(Some(&hooks));
    let key = unique_key();
    let mut worker = Worker::start(&ingest.rtmp_url(&key), &key, &[]);
    worker.send(&sources(&[video_source(1, "Ada")]));
    let _ada = Sender::start(&worker, 1, RED, None);
    hooks.wait("publish", &key, LIVE);
    worker.wait_state("live", LIVE);
    worker.send(&json!({"cmd": "stop"}));
    hooks.wait("publish_done", &key, SHORT);
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));
}

/// End of stdin (the server closed it or died) does the same as `stop`.
#[test]
fn closing_stdin_ends_the_publish_and_exits_0() {
    require_tools();
    let _cpu = serial();
    let hooks = Hooks::start();
    let ingest = Ingest::start(Some(&hooks));
    let key = unique_key();
    let mut worker = Worker::start(&ingest.rtmp_url(&key), &key, &[]);
    hooks.wait("publish", &key, LIVE);
    worker.wait_state("live", LIVE);
    worker.close_stdin();
    hooks.wait("publish_done", &key, SHORT);
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));
}

/// With every debug switch on, through a whole session (start, sources,
/// live, a source gone, stop), the key appears nowhere in stdout or stderr.
#[test]
fn stream_key_never_appears_in_the_workers_output() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);
    let key = unique_key();
    let mut worker = Worker::start(&ingest.rtmp_url(&key), &key, &[("GST_DEBUG_NO_COLOR", "1")]);
    worker.send(&sources(&[video_source(1, "Ada"), audio_source(2, "Ada")]));
    let _ada = Sender::start(&worker, 1, RED, Some(2));
    worker.wait_state("live", LIVE);
    worker.send(&sources(&[audio_source(2, "Ada")]));
    worker.send(&json!({"cmd": "stop"}));
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));
    worker.assert_key_not_written();
    // And the worker did talk: the check is not vacuous.
    assert!(worker.output().contains("\"live\""));
}

/// Garbage, oversized and ill-typed lines are skipped; the worker keeps
/// obeying the valid ones.
#[test]
fn bad_control_lines_are_ignored() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);
    let key = unique_key();
    let mut worker = Worker::spawn(&[], &key);
    // Before start as well as after.
    worker.send_raw(b"not json\n");
    worker.send_raw(b"{\"cmd\":\"sources\",\"sources\":42}\n");
    let peer = free_udp_port();
    let url = ingest.rtmp_url(&key);
    worker
        .send(&json!({"cmd": "start", "url": url, "connect": literal_addr(&url), "peer": format!("127.0.0.1:{peer}")}));
    worker.wait_event(LIVE, "ready", |v| v["ev"] == "ready");

    let mut huge = vec![b'x'; 3 << 20];
    huge.push(b'\n');
    worker.send_raw(&huge);
    let mut huge_json = b"{\"cmd\":\"sources\",\"sources\":[".to_vec();
    huge_json.extend(std::iter::repeat_n(b' ', 2 << 20));
    huge_json.extend_from_slice(b"]}\n");
    worker.send_raw(&huge_json);
    for line in [
        &b"\xff\xfe\x00garbage\n"[..],
        b"\n",
        b"[]\n",
        b"{\"cmd\":\"dance\"}\n",
        b"{\"cmd\":\"start\",\"url\":\"rtmp://elsewhere/live/x\",\"connect\":\"127.0.0.1:1\",\"peer\":\"127.0.0.1:1\"}\n",
        b"{\"cmd\":\"sources\",\"sources\":[{\"ssrc\":-1}]}\n",
        b"{\"cmd\":\"sources\",\"sources\":[{\"ssrc\":9,\"kind\":\"camera\",\"codec\":\"AV1\",\"pt\":45,\"clock_rate\":90000}]}\n",
        b"{\"cmd\":\"sources\",\"sources\":[{\"ssrc\":9,\"kind\":\"camera\",\"codec\":\"VP8\",\"pt\":300,\"clock_rate\":90000}]}\n",
        b"{\"cmd\":\"sources\",\"sources\":[{\"ssrc\":9,\"kind\":\"audio\",\"codec\":\"VP8\",\"pt\":96,\"clock_rate\":90000}]}\n",
    ] {
        worker.send_raw(line);
    }
    // Still alive and listening: a valid command is obeyed.
    worker.send(&sources(&[video_source(5, "Ada")]));
    worker.wait_event(SHORT, "a keyframe request for ssrc 5", |v| v["ev"] == "keyframe" && v["ssrc"] == 5);
    assert!(!worker.events().iter().any(|v| v["ssrc"] == 9), "an invalid source was used");
    worker.wait_state("live", LIVE);
    worker.send(&json!({"cmd": "stop"}));
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));
    worker.wait_stderr("ignored", SHORT);
}

/// Sources that send garbage (valid RTP headers, random payloads) for VP8,
/// H.264 and Opus cost at most their own tiles: the stream stays live and
/// the good participant stays in the picture.
#[test]
fn corrupt_sources_do_not_stop_the_stream() {
    require_tools();
    let _cpu = serial();
    let ingest = Ingest::start(None);
    let key = unique_key();
    let url = ingest.rtmp_url(&key);
    let mut worker = Worker::start(&url, &key, &[]);
    let h264 = json!({"ssrc": 8, "person": 8, "name": "Junk", "kind": "screen", "codec": "H264", "pt": 102, "clock_rate": 90000});
    worker.send(&sources(&[video_source(1, "Red"), video_source(7, "Junk"), h264, audio_source(9, "Junk")]));
    let sink = format!(
        "udpsink host=127.0.0.1 port={} bind-address=127.0.0.1 bind-port={} sync=false",
        worker.port, worker.peer_port
    );
    // Snow is random bytes; rtpgstpay wraps it in RTP as it is.
    let junk = |ssrc: u32, pt: u32| {
        format!(
            "videotestsrc is-live=true pattern=snow ! video/x-raw,format=GRAY8,width=64,height=40,framerate=30/1 \
             ! rtpgstpay pt={pt} ssrc={ssrc} mtu=1000 ! {sink}"
        )
    };
    let _red = Sender::launch(&format!(
        "videotestsrc is-live=true pattern=solid-color foreground-color={RED:#010x} \
         ! video/x-raw,width=640,height=480,framerate=30/1 \
         ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ssrc=1 ! {sink}"
    ));
    worker.wait_state("live", LIVE);
    let (red, _) = count_colours(&grab_frame(&url));
    assert!(red > 100, "the good participant is not shown");
    // Started well after the branches were made, so that the keyframe
    // request a video branch sends on its first packet is not throttled:
    // that request is the sign that the junk is reaching the branches.
    let _junk = Sender::launch(&format!("{} {} {}", junk(7, 96), junk(8, 102), junk(9, 111)));
    for ssrc in [7, 8] {
        poll_until(LIVE, "junk reaching its branch", || {
            let n = worker.events().iter().filter(|v| v["ev"] == "keyframe" && v["ssrc"] == ssrc).count();
            (n >= 2).then_some(())
        });
    }
    for _ in 0..3 {
        let (red, _) = count_colours(&grab_frame(&url));
        assert!(red > 100, "the good participant vanished");
    }
    assert!(!worker.events().iter().any(|v| v["ev"] == "state" && v["state"] != "live" && v["state"] != "starting"));
    worker.send(&json!({"cmd": "stop"}));
    assert_eq!(worker.wait_exit(SHORT).code(), Some(0));
}

/// An ingest that is never there: a few attempts with backoff, then
/// `failed` with a fixed reason and exit 1. (Idle waiting: not serialised.)
#[test]
fn gives_up_when_the_ingest_never_answers() {
    require_tools();
    let key = unique_key();
    let url = format!("rtmp://127.0.0.1:{}/live/{key}", free_tcp_port());
    let mut worker = Worker::start(&url, &key, &[]);
    let failed = worker.wait_state("failed", Duration::from_secs(60));
    assert_eq!(failed["reason"], "could not connect to the ingest");
    assert_eq!(worker.wait_exit(SHORT).code(), Some(1));
    assert!(!worker.events().iter().any(|v| v["state"] == "live" || v["state"] == "reconnecting"));
}

/// Only rtmp:// and rtmps:// are published to; anything else fails at once.
#[test]
fn refuses_urls_that_are_not_rtmp() {
    let key = unique_key();
    // Refused before it is even ready: it has no host to hold to an address.
    let mut worker = Worker::spawn(&[], &key);
    let peer = format!("127.0.0.1:{}", free_udp_port());
    worker.send(&json!({"cmd": "start", "url": format!("http://127.0.0.1:1/live/{key}"), "connect": "127.0.0.1:1", "peer": peer}));
    let failed = worker.wait_state("failed", SHORT);
    assert!(failed["reason"].as_str().unwrap().contains("URL"));
    assert_eq!(worker.wait_exit(SHORT).code(), Some(1));
}
