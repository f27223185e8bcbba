//! The node experiment's test app behaves as its results assume: its start-up and its SIGTERM
//! behaviours (exit, drain, close-drain). (The load generator's counting: the suite's load.rs.)

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct App {
    child: Child,
    addr: String,
}

impl App {
    fn start(args: &[&str]) -> App {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rollout_app"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rollout_app");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let first = lines.next().expect("a line").expect("utf-8");
        let addr = first
            .rsplit(' ')
            .next()
            .expect("listening on ADDR")
            .to_owned();
        // Keep draining stderr so the app never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        App { child, addr }
    }

    fn sigterm(&self) {
        zerodrop_testkit::process::sigterm(&self.child);
    }

    fn exit_code(mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("rollout_app did not exit within {within:?}");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET on a new connection: the status code, or the I/O error's kind.
fn get(addr: &str, path: &str) -> Result<u16, std::io::ErrorKind> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.kind())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.kind())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.kind())?;
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(std::io::ErrorKind::UnexpectedEof)
}

#[test]
fn slow_start_answers_503_until_ready_then_200() {
    let app = App::start(&["--ready-after", "2", "--work-ms", "0"]);
    assert_eq!(get(&app.addr, "/healthz"), Ok(200), "alive at once");
    assert_eq!(get(&app.addr, "/ready"), Ok(503));
    assert_eq!(get(&app.addr, "/"), Ok(503), "a TCP probe would pass now");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(get(&app.addr, "/ready"), Ok(200));
    assert_eq!(get(&app.addr, "/"), Ok(200));
}

/// Starts the app with a slow `/`, sends one request and SIGTERMs the app while it is in flight.
fn sigterm_during_a_request(
    on_sigterm: &str,
) -> (
    App,
    std::thread::JoinHandle<Result<u16, std::io::ErrorKind>>,
) {
    let app = App::start(&["--on-sigterm", on_sigterm, "--work-ms", "800"]);
    let addr = app.addr.clone();
    let in_flight = std::thread::spawn(move || get(&addr, "/"));
    std::thread::sleep(Duration::from_millis(200));
    app.sigterm();
    (app, in_flight)
}

#[test]
fn drain_finishes_in_flight_requests_and_refuses_new_ones() {
    let (app, in_flight) = sigterm_during_a_request("drain");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        get(&app.addr, "/"),
        Err(std::io::ErrorKind::ConnectionRefused),
        "the listener closes at SIGTERM"
    );
    assert_eq!(
        in_flight.join().expect("thread"),
        Ok(200),
        "in flight: answered"
    );
    assert_eq!(app.exit_code(Duration::from_secs(5)), Some(0));
}

#[test]
fn exit_mode_drops_in_flight_requests() {
    let (app, in_flight) = sigterm_during_a_request("exit");
    assert!(
        in_flight.join().expect("thread").is_err(),
        "the request in flight fails"
    );
    assert_eq!(app.exit_code(Duration::from_secs(5)), Some(0));
}

/// One GET on an open keep-alive connection: the status and whether it said `Connection: close`.
fn keepalive_get(s: &mut TcpStream) -> std::io::Result<(u16, bool)> {
    write!(s, "GET / HTTP/1.1\r\nhost: t\r\n\r\n")?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, head.contains("connection: close")))
}

#[test]
fn drain_closes_an_idle_keepalive_connection_at_once_close_drain_answers_on_it_first() {
    // drain: the idle connection is closed at SIGTERM, so a client's next request on it races
    // the close (here it loses: the connection is gone when it sends).
    let app = App::start(&["--on-sigterm", "drain", "--work-ms", "0"]);
    let mut conn = TcpStream::connect(&app.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    assert_eq!(keepalive_get(&mut conn).expect("first"), (200, false));
    app.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        keepalive_get(&mut conn).is_err(),
        "drain closed the idle connection"
    );
    assert_eq!(app.exit_code(Duration::from_secs(5)), Some(0));

    // close-drain: for its window the same request is answered, with Connection: close, and
    // new connections are still accepted; then it exits.
    let app = App::start(&[
        "--on-sigterm",
        "close-drain",
        "--drain-window",
        "1",
        "--work-ms",
        "0",
    ]);
    let mut conn = TcpStream::connect(&app.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    assert_eq!(keepalive_get(&mut conn).expect("first"), (200, false));
    app.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        keepalive_get(&mut conn).expect("in the window"),
        (200, true)
    );
    assert_eq!(
        get(&app.addr, "/"),
        Ok(200),
        "still accepting in the window"
    );
    assert_eq!(
        get(&app.addr, "/ready"),
        Ok(503),
        "not ready once SIGTERM came"
    );
    assert_eq!(app.exit_code(Duration::from_secs(5)), Some(0));
}
