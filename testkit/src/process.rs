//! Child processes of the tests: SIGTERM, and children that die with the test process.
//! The only unsafe code of the project lives here: libc calls no safe crate in the tree wraps.

#![allow(unsafe_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Sends SIGTERM to a child of ours.
pub fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child's pid; no memory is shared.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGTERM) },
        0,
        "kill -TERM {pid}"
    );
}

/// Children we must not leak: they get SIGTERM when this process exits (PR_SET_PDEATHSIG is
/// tied to the spawning thread, so spawn from one that lives as long as the process).
pub fn spawn_tied(mut cmd: Command) -> Child {
    type SpawnRequest = (Command, std::sync::mpsc::Sender<Child>);
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                let child = cmd.spawn().expect("spawn");
                let _ = reply.send(child);
            }
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    cmd.stdin(Stdio::piped());
    tx.lock().unwrap().send((cmd, reply_tx)).unwrap();
    reply_rx.recv().unwrap()
}
