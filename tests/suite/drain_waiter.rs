//! `zerodrop drain-wait`, the real binary: only the kubelet's hook call drains, a connection
//! that keeps receiving holds the wait to the maximum, a quiet app ends it, waits are bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Waiter {
    child: Child,
    url: String,
    listen: std::net::SocketAddr,
    /// Its log lines so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn waiter(app_port: u16, max: &str) -> Waiter {
    waiter_with(app_port, max, &[])
}

fn waiter_with(app_port: u16, max: &str, extra: &[&str]) -> Waiter {
    let port = app_port.to_string();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--ports",
        &port,
        "--min",
        "200ms",
    ];
    args.extend(["--quiet", "300ms", "--max", max]);
    args.extend(extra);
    spawn(&args)
}

/// `zerodrop drain-wait` with JSON logs, read every 50 ms, and `args`; once it serves.
fn spawn(args: &[&str]) -> Waiter {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zerodrop"));
    command
        .args(["drain-wait", "--log-format", "json", "--every", "50ms"])
        .args(args);
    spawn_command(command)
}

/// Runs a `drain-wait` command line; once it serves.
fn spawn_command(mut command: Command) -> Waiter {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listen = loop {
        let line = lines.next().expect("a serving line").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["message"] == "drain waiter serving" {
            break v["listen"].as_str().unwrap().parse().unwrap();
        }
    };
    // Keep reading its log so it never blocks on a full pipe.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep.lock().unwrap().push(line);
        }
    });
    Waiter {
        child,
        url: format!("http://{listen}"),
        listen,
        log,
    }
}

async fn call(url: &str, agent: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(agent) = agent {
        request = request.header("user-agent", agent);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const KUBELET: Option<&str> = Some("kube-lifecycle/1.37");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_kubelets_call_drains_and_a_quiet_app_ends_the_wait() {
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let w = waiter(app.local_addr().unwrap().port(), "20s");
    assert_eq!(call(&format!("{}/ready", w.url), None).await.0, 200);
    assert_eq!(call(&format!("{}/drain", w.url), None).await.0, 403);
    assert_eq!(
        call(&format!("{}/drain", w.url), Some("curl/8")).await.0,
        403
    );
    assert_eq!(call(&format!("{}/elsewhere", w.url), KUBELET).await.0, 404);
    let started = Instant::now();
    let (status, body) = call(&format!("{}/drain", w.url), KUBELET).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Nothing reaches the app: the quiet window from the call (and at least the minimum).
    // (The namespace is the suite's, whose other tests' connections count as unseen
    // arrivals: it may end later, not at the maximum.)
    assert_eq!(v["ending"], "quiet", "{body}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Its log line, as `zerodrop verify` reads it from the waiter's container.
    std::thread::sleep(Duration::from_millis(100));
    let lines = w.log.lock().unwrap().clone();
    let drains: Vec<_> = lines
        .iter()
        .filter_map(|l| zerodrop::verify::podwatch::drain_line(l))
        .collect();
    assert_eq!(drains.len(), 1, "{lines:?}");
    assert_eq!(drains[0].ending, "quiet");
    assert_eq!(level_of_drains(&lines), ["INFO"], "{lines:?}");
    assert_eq!(
        Some(drains[0].waited_ms),
        v["waited_ms"].as_u64(),
        "{lines:?}"
    );
}

/// The level of each drain line of the waiter's log.
fn level_of_drains(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| zerodrop::verify::podwatch::drain_line(l).is_some())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["level"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_keeps_receiving_holds_the_wait_and_waits_are_bounded() {
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = app.local_addr().unwrap().port();
    let w = waiter(port, "2s");
    // A client sends on its open connection every 50 ms, all along.
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = app.accept().unwrap();
    let sending = std::thread::spawn(move || {
        for _ in 0..120 {
            if client.write_all(b"GET / HTTP/1.1\r\n\r\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let calls: Vec<_> = (0..17)
        .map(|_| {
            let url = format!("{}/drain", w.url);
            tokio::spawn(async move { call(&url, KUBELET).await })
        })
        .collect();
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(refused, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s == 200) {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (status, v["ending"].as_str()),
            (&200, Some("max")),
            "{body}"
        );
        assert!(v["busy_connections"].as_u64() >= Some(1), "{body}");
    }
    sending.join().unwrap();
    // A wait the maximum ended let SIGTERM meet work still arriving: said at WARN.
    std::thread::sleep(Duration::from_millis(100));
    let lines = w.log.lock().unwrap().clone();
    assert_eq!(level_of_drains(&lines), ["WARN"; 16], "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_connections_lets_a_busy_pinned_connection_end_the_wait_quiet() {
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = app.local_addr().unwrap().port();
    let w = waiter_with(port, "10s", &["--count", "connections"]);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = app.accept().unwrap();
    let sending = std::thread::spawn(move || {
        for _ in 0..40 {
            let _ = client.write_all(b"GET / HTTP/1.1\r\n\r\n");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (status, body) = call(&format!("{}/drain", w.url), KUBELET).await;
    sending.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    // The suite's other tests may open connections here: it may end later, not at the max.
    assert_eq!(
        (status, v["ending"].as_str()),
        (200, Some("quiet")),
        "{body}"
    );
    assert!(v["busy_connections"].as_u64() >= Some(1), "{body}");
}

/// In a network namespace of its own (`unshare -rn`: nothing else's connections count), a
/// waiter on `[::]` that a "kubelet" on 127.0.0.1 calls (it sees ::ffff:127.0.0.1) while that
/// address probes the app on IPv4: the probes are the kubelet's, the wait ends quiet with no
/// new connection. Before addresses were compared canonically it lasted to the maximum.
#[test]
fn the_kubelets_probes_are_known_across_address_families() {
    const INSIDE: &str = "ZERODROP_TEST_IN_NETNS";
    if std::env::var_os(INSIDE).is_none() {
        let me = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(me)
            .args([
                "drain_waiter::the_kubelets_probes_are_known_across_address_families",
                "--exact",
                "--nocapture",
            ])
            .env(INSIDE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let app_port = app.local_addr().unwrap().port();
    // It answers and closes its side first, as Go's server does for a probe asking it to
    // (TIME-WAIT is then on the app's side, where the waiter sees it).
    std::thread::spawn(move || {
        for mut stream in app.incoming().flatten() {
            let mut buf = [0u8; 256];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = std::io::Read::read_to_end(&mut stream, &mut Vec::new());
        }
    });
    let app = app_port.to_string();
    let bounds = ["--min", "200ms", "--quiet", "600ms", "--max", "5s"];
    let waiter = spawn(&[&["--listen", "[::]:0", "--ports", &app][..], &bounds].concat());
    assert!(waiter.listen.is_ipv6(), "{}", waiter.listen);
    let port = waiter.listen.port();
    // The kubelet's probes: a connection to the app every 100 ms, from 127.0.0.1.
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = probing.clone();
    let prober = std::thread::spawn(move || {
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", app_port)) {
                let _ = c.write_all(b"GET /ready HTTP/1.1\r\nconnection: close\r\n\r\n");
                let _ = std::io::Read::read_to_end(&mut c, &mut Vec::new());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut hook = TcpStream::connect(("127.0.0.1", port)).unwrap();
    hook.write_all(
        b"GET /drain HTTP/1.1\r\nhost: x\r\nuser-agent: kube-lifecycle/1.37\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut hook, &mut answer).unwrap();
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    prober.join().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    assert_eq!(v["ending"], "quiet", "{answer}");
    assert_eq!(v["new_connections"], 0, "{answer}");
}

/// A waiter that cannot read the sockets (here a seccomp filter denies it netlink sockets, as a
/// strict `Localhost` profile would) waits the fixed sleep, says why, and says it at WARN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_cannot_read_the_sockets_waits_the_fallback_sleep() {
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = app.local_addr().unwrap().port().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_zerodrop"));
    command.args([
        "drain-wait",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
    ]);
    command.args(["--ports", &port, "--min", "200ms", "--quiet", "300ms"]);
    command.args(["--max", "20s", "--fallback", "2s"]);
    deny_netlink(&mut command);
    let w = spawn_command(command);
    let started = Instant::now();
    let (status, body) = call(&format!("{}/drain", w.url), KUBELET).await;
    let took = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, v["ending"].as_str()),
        (200, Some("fallback")),
        "{body}"
    );
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    std::thread::sleep(Duration::from_millis(100));
    let lines = w.log.lock().unwrap().clone();
    assert_eq!(level_of_drains(&lines), ["WARN"], "{lines:?}");
}

/// Installs, in the child before it execs, a seccomp filter that fails `socket(AF_NETLINK, ..)`
/// with EPERM and allows everything else. Written by hand: ten BPF instructions do not earn a
/// dependency, and no test crate offers this.
#[allow(unsafe_code)]
fn deny_netlink(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half, little-endian).
    let filter = [
        stmt(load, 4),
        jump(ARCH, 0, 5),
        stmt(load, 0),
        jump(libc::SYS_socket as u32, 0, 3),
        stmt(load, 16),
        jump(libc::AF_NETLINK as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes two prctl calls, which allocate
    // nothing; the filter array outlives them (it is moved into the closure).
    unsafe {
        command.pre_exec(move || {
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `drain-wait --await` on `listen`: the sidecar's postStart hook, as the kubelet runs it.
fn await_serving(listen: &str, within: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args(["drain-wait", "--await", within, "--listen", listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_poststart_check_returns_once_the_waiter_serves_and_fails_within_its_bound() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("[::]:{port}");
    // Started before the waiter, as the kubelet may: it must hold on until the waiter serves.
    let mut hook = await_serving(&listen, "20s");
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        hook.try_wait().unwrap().is_none(),
        "returned before anything served"
    );
    let _w = spawn(&["--listen", &listen]);
    let started = Instant::now();
    let status = hook.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A port that accepts and never answers (something else holds it): fails in its bound,
    // naming the port, so the kubelet restarts the sidecar instead of starting the app.
    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = stalled.local_addr().unwrap().to_string();
    let started = Instant::now();
    let out = await_serving(&addr, "500ms").wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {}", stalled.local_addr().unwrap().port())),
        "{stderr}"
    );
}
