//! Before any action: is the load steady, still settling (kube-proxy programming a new Service),
//! or failing at rest? Judged on every progress line, so a clearly failing app is refused in
//! seconds, not after every window has run out. Pure.

/// The load since the current window began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub elapsed_ms: u64,
    pub sent: u64,
    pub failed: u64,
    /// Of the failures, those the app answered (a non-2xx status).
    pub answered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The window is not over yet.
    Wait,
    /// The window is over and had failures: start another.
    Next,
    /// A whole window without a failure.
    Steady,
    /// The app fails without any action.
    AtRest,
}

/// Windows with failures before verify gives up, however few they were.
pub const MAX_WINDOWS: u32 = 6;
/// An app still answering errors after the first window is judged after this long in the next:
/// routing lag refuses or resets connections, it does not answer them.
pub const ANSWERED_AFTER_MS: u64 = 2000;

/// The verdict on `w`, the window after `windows_before` failed ones.
pub fn judge(w: &Window, steady_ms: u64, windows_before: u32) -> Verdict {
    // The first window is excused: an app deployed a moment ago may still be warming up (ready
    // by a TCP probe, answering 503), as kube-proxy may still be programming a new Service.
    if windows_before >= 1
        && w.elapsed_ms >= ANSWERED_AFTER_MS
        && w.sent > 0
        && w.answered * 2 >= w.sent
    {
        return Verdict::AtRest;
    }
    if w.elapsed_ms < steady_ms {
        return Verdict::Wait;
    }
    if w.failed == 0 {
        return Verdict::Steady;
    }
    // The first window may start before kube-proxy programmed the Service; a later one that
    // still loses half its requests is not settling.
    if windows_before >= 1 && w.failed * 2 >= w.sent {
        return Verdict::AtRest;
    }
    if windows_before + 1 >= MAX_WINDOWS {
        return Verdict::AtRest;
    }
    Verdict::Next
}
