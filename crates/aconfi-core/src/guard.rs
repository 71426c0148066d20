//! A panic inside str0m must not take down a room or the server.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into `Err(())`: the caller drops the one
/// session it concerns and the room goes on.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| ())
}
