//! `zerodrop drain-wait`, the real binary: only the kubelet's hook call drains, a connection
//! that keeps receiving holds the wait to the maximum, a quiet app ends it, waits are bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Waiter {
    child: Child,
    url: String,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn waiter(app_port: u16, max: &str) -> Waiter {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args([
            "drain-wait",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .args([
            "--ports",
            &app_port.to_string(),
            "--min",
            "200ms",
            "--quiet",
            "300ms",
        ])
        .args(["--max", max, "--every", "50ms"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listen = loop {
        let line = lines.next().expect("a serving line").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["message"] == "drain waiter serving" {
            break v["listen"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Waiter {
        child,
        url: format!("http://{listen}"),
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
}
