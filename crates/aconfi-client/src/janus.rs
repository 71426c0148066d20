//! Janus VideoRoom adapter (filled in below).
