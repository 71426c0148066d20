//! The controller: applies the server's commands to the pipeline, watches
//! the bus and the RTMP connection, and rebuilds the pipeline when the
//! ingest goes away.

use crate::pipeline::{BuildError, ErrorSource, Output};
use crate::protocol::{validate_sources, Command, Emitter, Line, Reason, Source, State};
use crate::rtp::Routes;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the controller looks at the bus and its timers when no command
/// comes in.
const TICK: Duration = Duration::from_millis(100);
/// How often the RTMP byte counter is read.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// Bytes the connection must have sent before we call it live: more than
/// the handshake and the connect/publish commands, so media is flowing.
const LIVE_BYTES: u64 = 32 * 1024;
/// An attempt that is not live after this long has failed (the ingest takes
/// TCP connections but never accepts the publish).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Live, but no byte went out for this long: the ingest stopped reading.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Never live: give up after this many failed attempts.
const MAX_CONNECT_ATTEMPTS: u32 = 5;
/// Once live: keep retrying for this long of continuous failure.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// Live for this long: the next failure starts again at the shortest backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// A branch whose decoder failed comes back after this long.
const BRANCH_RETRY: Duration = Duration::from_secs(3);
/// `stop` waits this long for the end of stream to reach the ingest.
const EOS_TIMEOUT: Duration = Duration::from_secs(2);

/// How the worker ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    Failed,
}

/// Our own stderr lines: fixed texts only (no names, no URLs).
pub fn log(text: &'static str) {
    eprintln!("aconfi-stream: {text}");
}

/// Backoff before attempt `failures + 1`: 1 s, 2 s, 4 s … 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(30))
}

pub struct Worker {
    emitter: Arc<Emitter>,
    routes: Routes,
    url: String,
    insecure_tls: bool,
    sources: Vec<Source>,
    output: Option<Output>,
    reported: Option<State>,
    ever_live: bool,
    live_since: Option<Instant>,
    /// Failed attempts since the last stable live period.
    failures: u32,
    retry_at: Option<Instant>,
    failing_since: Option<Instant>,
    attempt_started: Instant,
    last_bytes: u64,
    last_growth: Instant,
    next_stats: Instant,
    branch_retry: HashMap<u32, Instant>,
}

impl Worker {
    pub fn new(emitter: Arc<Emitter>, routes: Routes, url: String, insecure_tls: bool, sources: Vec<Source>) -> Self {
        let now = Instant::now();
        Worker {
            emitter,
            routes,
            url,
            insecure_tls,
            sources,
            output: None,
            reported: None,
            ever_live: false,
            live_since: None,
            failures: 0,
            retry_at: None,
            failing_since: None,
            attempt_started: now,
            last_bytes: 0,
            last_growth: now,
            next_stats: now,
            branch_retry: HashMap::new(),
        }
    }

    fn report(&mut self, state: State, reason: Option<Reason>) {
        if self.reported != Some(state) {
            self.reported = Some(state);
            self.emitter.state(state, reason);
        }
    }

    /// Runs until `stop`, end of input, or giving up.
    pub fn run(mut self, input: Receiver<Line>) -> Exit {
        self.report(State::Starting, None);
        if let Some(exit) = self.build() {
            return exit;
        }
        loop {
            match input.recv_timeout(TICK) {
                Ok(Line::Text(text)) => match Command::parse(&text) {
                    Ok(Command::Stop) => break,
                    Ok(Command::Sources { sources }) => self.set_sources(validate_sources(sources)),
                    Ok(Command::Start { .. }) => log("ignored a second start command"),
                    Err(_) => log("ignored a malformed control line"),
                },
                Ok(Line::Bad) => log("ignored an oversized or non-UTF-8 control line"),
                Err(RecvTimeoutError::Timeout) => {}
                // End of input: the server closed our stdin or died.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(exit) = self.poll() {
                return exit;
            }
        }
        if let Some(output) = self.output.take() {
            output.shutdown(&self.routes, EOS_TIMEOUT);
        }
        Exit::Stopped
    }

    /// Builds and starts a pipeline with every current source.
    fn build(&mut self) -> Option<Exit> {
        self.retry_at = None;
        let mut output = match Output::new(&self.url, self.insecure_tls) {
            Ok(output) => output,
            Err(e) => {
                // Neither a bad URL nor a missing element gets better by
                // retrying.
                let reason = if e == BuildError::Url { Reason::BadUrl } else { Reason::PipelineFailed };
                self.report(State::Failed, Some(reason));
                return Some(Exit::Failed);
            }
        };
        for source in &self.sources {
            if !self.branch_retry.contains_key(&source.ssrc) && output.add(source, &self.routes, &self.emitter).is_err()
            {
                log("could not build a branch for a source");
            }
        }
        output.apply_layout(&self.sources);
        let now = Instant::now();
        (self.attempt_started, self.last_bytes, self.last_growth, self.next_stats) = (now, 0, now, now + STATS_EVERY);
        let started = output.play();
        self.output = Some(output);
        if !started {
            return self.fail(Reason::CouldNotConnect);
        }
        None
    }

    /// Tears the pipeline down and schedules the next attempt, or gives up.
    fn fail(&mut self, reason: Reason) -> Option<Exit> {
        self.routes.write().unwrap_or_else(|e| e.into_inner()).clear();
        if let Some(output) = self.output.take() {
            output.stop();
        }
        self.live_since = None;
        self.failures += 1;
        let now = Instant::now();
        if !self.ever_live {
            log("an attempt to publish failed");
            if self.failures >= MAX_CONNECT_ATTEMPTS {
                self.report(State::Failed, Some(Reason::CouldNotConnect));
                return Some(Exit::Failed);
            }
        } else {
            log("the stream was interrupted");
            let since = *self.failing_since.get_or_insert(now);
            if now.duration_since(since) > GIVE_UP_AFTER {
                self.report(State::Failed, Some(reason));
                return Some(Exit::Failed);
            }
            self.report(State::Reconnecting, Some(reason));
        }
        self.retry_at = Some(now + backoff(self.failures));
        None
    }

    fn set_sources(&mut self, sources: Vec<Source>) {
        self.branch_retry.retain(|ssrc, _| sources.iter().any(|s| s.ssrc == *ssrc));
        if let Some(output) = &mut self.output {
            for ssrc in output.branch_ssrcs() {
                let keep = match (sources.iter().find(|s| s.ssrc == ssrc), output.branch_source(ssrc)) {
                    (Some(new), Some(old)) => new.same_media(old),
                    _ => false,
                };
                if !keep {
                    output.remove(ssrc, &self.routes);
                }
            }
            for source in &sources {
                if output.has_branch(source.ssrc) {
                    output.relabel(source);
                } else if !self.branch_retry.contains_key(&source.ssrc)
                    && output.add(source, &self.routes, &self.emitter).is_err()
                {
                    log("could not build a branch for a source");
                }
            }
            output.apply_layout(&sources);
        }
        self.sources = sources;
    }

    /// Handles bus messages and timers.
    fn poll(&mut self) -> Option<Exit> {
        let bus = self.output.as_ref().and_then(|o| o.pipeline.bus());
        while let (Some(bus), Some(output)) = (&bus, &mut self.output) {
            let Some(msg) = bus.pop() else { break };
            let failed = match msg.view() {
                gst::MessageView::Error(err) => match output.classify(err.src()) {
                    ErrorSource::Branch(ssrc) => {
                        // One bad source costs its tile, not the stream.
                        log("a source failed to decode; its tile is dropped for now");
                        output.remove(ssrc, &self.routes);
                        output.apply_layout(&self.sources);
                        self.branch_retry.insert(ssrc, Instant::now() + BRANCH_RETRY);
                        None
                    }
                    ErrorSource::Stale => None,
                    ErrorSource::Output if self.ever_live => Some(Reason::IngestClosed),
                    ErrorSource::Output => Some(Reason::CouldNotConnect),
                    ErrorSource::Other => Some(Reason::EncoderFailed),
                },
                // Live sources never end by themselves: an EOS means the
                // output broke.
                gst::MessageView::Eos(_) => Some(Reason::IngestClosed),
                _ => None,
            };
            if let Some(reason) = failed {
                if let Some(exit) = self.fail(reason) {
                    return Some(exit);
                }
            }
        }

        let now = Instant::now();
        if let Some(output) = &self.output {
            if now >= self.next_stats {
                self.next_stats = now + STATS_EVERY;
                let bytes = output.bytes_out();
                if bytes > self.last_bytes {
                    self.last_bytes = bytes;
                    self.last_growth = now;
                    if self.live_since.is_none() && bytes >= LIVE_BYTES {
                        self.live_since = Some(now);
                        self.ever_live = true;
                        self.failing_since = None;
                        log("live");
                        self.report(State::Live, None);
                    }
                }
            }
            match self.live_since {
                Some(since) if now.duration_since(since) > STABLE_AFTER => self.failures = 0,
                _ => {}
            }
            if self.live_since.is_some() && now.duration_since(self.last_growth) > STALL_TIMEOUT {
                return self.fail(Reason::IngestStalled);
            }
            if self.live_since.is_none() && now.duration_since(self.attempt_started) > CONNECT_TIMEOUT {
                return self.fail(Reason::CouldNotConnect);
            }
        } else if self.retry_at.is_some_and(|t| now >= t) {
            log("retrying");
            return self.build();
        }

        let due: Vec<u32> = self.branch_retry.iter().filter(|(_, t)| now >= **t).map(|(s, _)| *s).collect();
        for ssrc in due {
            self.branch_retry.remove(&ssrc);
            let (Some(output), Some(source)) = (&mut self.output, self.sources.iter().find(|s| s.ssrc == ssrc)) else {
                continue;
            };
            if !output.has_branch(ssrc) {
                if output.add(source, &self.routes, &self.emitter).is_err() {
                    log("could not build a branch for a source");
                }
                output.apply_layout(&self.sources);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(0).as_secs(), 1);
        assert_eq!(backoff(u32::MAX).as_secs(), 30);
    }
}
