// Command controlplane runs etcd and kube-apiserver (and optionally kube-controller-manager)
// on loopback with free ports and generated credentials, for zerodrop's end-to-end tests.
//
// It prints one line "READY <json>" on stdout once /readyz answers, and stops everything it
// started when it receives SIGTERM/SIGINT or when its stdin closes (the test process died).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type ready struct {
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	Dir        string `json:"dir"`
	CACert     string `json:"caCert"`
	ClientCert string `json:"clientCert"`
	ClientKey  string `json:"clientKey"`
	// The apiserver's pid, for benchmarks that account its CPU.
	APIServerPid int `json:"apiserverPid"`
}

// repeated collects a flag given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	dir := flag.String("dir", "", "state directory (default: a new temp dir)")
	bin := flag.String("bin", "", "directory holding etcd, kube-apiserver, kube-controller-manager (default: next to this binary)")
	withKCM := flag.Bool("controller-manager", true, "also run kube-controller-manager")
	withNode := flag.Bool("node", false, "also run a worker: containerd, kube-scheduler, kubelet, kube-proxy (root)")
	images := flag.String("images", "", "with --node: comma-separated OCI image tarballs to import into containerd")
	registry := flag.String("registry", "", "with --node: a distribution registry binary, served plain HTTP on the bridge for containerd to pull from")
	clients := flag.Int("clients", 0, "with --node: client nodes beside it (network namespaces, each with its own kube-proxy)")
	proxyMode := flag.String("proxy-mode", "iptables", "with --node: kube-proxy's mode on every node: iptables or nftables")
	watchStdin := flag.Bool("watch-stdin", true, "stop when stdin closes (false for a detached node)")
	var apiArgs repeated
	flag.Var(&apiArgs, "apiserver-arg", "an extra kube-apiserver flag, e.g. --audit-log-path=F (repeatable)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetOutput(os.Stderr)
	if *bin == "" {
		self, err := os.Executable()
		must(err)
		*bin = filepath.Dir(self)
	}
	if *proxyMode != "iptables" && *proxyMode != "nftables" {
		log.Fatalf("--proxy-mode %q: iptables or nftables (this kernel has no IP_VS)", *proxyMode)
	}
	if *clients < 0 || *clients > maxClients {
		log.Fatalf("--clients %d: 0 to %d", *clients, maxClients)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "zerodrop-cp-")
		must(err)
		*dir = d
	}
	must(os.MkdirAll(*dir, 0o700))
	pki := filepath.Join(*dir, "pki")
	creds, err := generatePKI(pki)
	must(err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; cancel() }()
	if *watchStdin {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	}

	var procs []*exec.Cmd
	stopAll := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			stop(procs[i])
		}
	}
	defer stopAll()

	etcdClient, etcdPeer, apiPort := freePort(), freePort(), freePort()
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	etcd := start(ctx, *dir, "etcd", filepath.Join(*bin, "etcd"),
		"--data-dir", filepath.Join(*dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--initial-advertise-peer-urls", "http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--initial-cluster", "default=http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--unsafe-no-fsync", "--quota-backend-bytes", "4294967296", "--log-level", "warn")
	procs = append(procs, etcd)
	if !waitHTTP(ctx, etcdURL+"/health", nil, 60*time.Second) {
		log.Print("etcd did not become healthy")
		return
	}

	// Alone, the apiserver serves loopback and 1.37 then refuses to publish the `kubernetes`
	// Service endpoints. With a node, pods must reach it: it serves the node's bridge address,
	// which the kubernetes Service then points at.
	apiHost, reconciler := "127.0.0.1", "none"
	var n *node
	if *withNode {
		n = newNode(*dir, *bin, *proxyMode)
		defer n.stop()
		if err := n.createBridge(); err != nil {
			log.Print(err)
			return
		}
		apiHost, reconciler = bridgeIP, "lease"
	}
	server := "https://" + apiHost + ":" + strconv.Itoa(apiPort)
	apiserverArgs := []string{"--etcd-servers", etcdURL,
		"--bind-address", apiHost, "--advertise-address", apiHost,
		"--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", creds.serverCert, "--tls-private-key-file", creds.serverKey,
		"--client-ca-file", creds.caCert,
		"--service-account-key-file", creds.saPub, "--service-account-signing-key-file", creds.saKey,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", "198.19.0.0/16",
		"--authorization-mode", "Node,RBAC",
		"--allow-privileged=true",
		"--cert-dir", filepath.Join(*dir, "apiserver-certs"),
		"--endpoint-reconciler-type", reconciler,
		// kubelet serves on the node's InternalIP and trusts the cluster CA for clients.
		"--kubelet-preferred-address-types", "InternalIP",
		"--kubelet-client-certificate", creds.adminCert, "--kubelet-client-key", creds.adminKey,
		"--profiling=false", "--v=1"}
	api := start(ctx, *dir, "kube-apiserver", filepath.Join(*bin, "kube-apiserver"), append(apiserverArgs, apiArgs...)...)
	procs = append(procs, api)
	client := adminClient(creds)
	if !waitHTTP(ctx, server+"/readyz", client, 180*time.Second) {
		log.Print("kube-apiserver did not become ready")
		return
	}
	kubeconfig := filepath.Join(*dir, "kubeconfig")
	must(writeKubeconfig(kubeconfig, server, creds.caCert, creds.adminCert, creds.adminKey))

	if *withKCM {
		kcmConfig := filepath.Join(*dir, "kcm.kubeconfig")
		must(writeKubeconfig(kcmConfig, server, creds.caCert, creds.kcmCert, creds.kcmKey))
		kcm := start(ctx, *dir, "kube-controller-manager", filepath.Join(*bin, "kube-controller-manager"),
			"--kubeconfig", kcmConfig,
			"--authentication-kubeconfig", kcmConfig, "--authorization-kubeconfig", kcmConfig,
			"--service-account-private-key-file", creds.saKey,
			"--root-ca-file", creds.caCert,
			"--use-service-account-credentials=false",
			"--leader-elect=false",
			"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(freePort()),
			"--v=1")
		procs = append(procs, kcm)
	}

	if n != nil {
		var tarballs []string
		if *images != "" {
			tarballs = strings.Split(*images, ",")
		}
		n.registry = *registry
		if err := n.start(ctx, *dir, kubeconfig, creds.caCert, tarballs); err != nil {
			log.Print(err)
			return
		}
		if !waitNodeReady(ctx, server, creds, 120*time.Second) {
			log.Print("node did not become Ready (see kubelet.log)")
			return
		}
		if err := n.addClients(ctx, *dir, server, kubeconfig, creds, *clients); err != nil {
			log.Print(err)
			return
		}
	}

	out, _ := json.Marshal(ready{
		Kubeconfig: kubeconfig, Server: server, Dir: *dir,
		CACert: creds.caCert, ClientCert: creds.adminCert, ClientKey: creds.adminKey,
		APIServerPid: api.Process.Pid,
	})
	fmt.Printf("READY %s\n", out)
	<-ctx.Done()
	log.Print("stopping control plane")
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs a component with its output in <dir>/<name>.log, in its own process group.
func start(ctx context.Context, dir, name, path string, args ...string) *exec.Cmd {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	must(err)
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(cmd.Start())
	log.Printf("started %s (pid %d), log %s", name, cmd.Process.Pid, logFile.Name())
	go func() {
		_ = cmd.Wait()
		if ctx.Err() == nil {
			log.Printf("%s exited early: %v (see %s)", name, cmd.ProcessState, logFile.Name())
		}
	}()
	return cmd
}

// stop sends SIGTERM to the component's process group, then SIGKILL after a grace period.
func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pgid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func waitHTTP(ctx context.Context, url string, client *http.Client, limit time.Duration) bool {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func adminClient(c *credentials) *http.Client {
	pair, err := tls.LoadX509KeyPair(c.adminCert, c.adminKey)
	must(err)
	caPEM, err := os.ReadFile(c.caCert)
	must(err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
	}}
}

func writeKubeconfig(path, server, ca, cert, key string) error {
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: zerodrop-e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: zerodrop-e2e
  context:
    cluster: zerodrop-e2e
    user: admin
current-context: zerodrop-e2e
`, server, ca, cert, key)
	return os.WriteFile(path, []byte(text), 0o600)
}
