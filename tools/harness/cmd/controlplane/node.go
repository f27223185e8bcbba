// node.go: with --node, one real worker on this machine: containerd + runc + CNI bridge,
// kube-scheduler, kubelet and kube-proxy (iptables or nftables), all torn down again on exit.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	cri "k8s.io/cri-client/pkg"
)

const (
	nodeName = "zerodrop-node"
	// Inside 198.18.0.0/15, the range reserved for benchmarks; services use 198.19.0.0/16.
	// A /16, not a node's usual /24: host-local hands out addresses in turn and an experiment
	// creates hundreds of pods; in a /24 addresses of pods that died seconds ago come back,
	// which would add a variable (stale neighbour and conntrack entries) to every measurement.
	podSubnet = "198.18.0.0/16"
	// Pods take addresses from here on; below it are the bridge and the client nodes.
	podRangeStart = "198.18.1.1"
	bridgeIP      = "198.18.0.1"
	clusterCIDR   = "198.18.0.0/16"
	bridgeName    = "zd0"
	// The node's registry: plain HTTP on the bridge, where containerd (on the host) and pods
	// (zerodrop inspecting images) both reach it.
	registryAddr = bridgeIP + ":5000"
	cniBinDir    = "/usr/lib/cni"
)

// node is what the worker needs to start and, above all, to clean up after itself.
type node struct {
	dir, bin, sock string
	// The distribution registry binary ("" for none).
	registry string
	// kube-proxy's mode on every node: iptables or nftables.
	proxyMode  string
	containerd *exec.Cmd
	procs      []*exec.Cmd
	// The client nodes' network namespaces.
	netns []string
}

func newNode(dir, bin, proxyMode string) *node {
	return &node{dir: filepath.Join(dir, "node"), bin: bin, proxyMode: proxyMode}
}

// start brings up containerd (importing the given OCI tarballs), then the scheduler, kubelet
// and kube-proxy; it records the processes on n so stop can take them down in order.
func (n *node) start(ctx context.Context, stateDir, kubeconfig, caCert string, images []string) error {
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "kubelet", "logs"} {
		must(os.MkdirAll(filepath.Join(n.dir, d), 0o700))
	}
	n.sock = filepath.Join(n.dir, "containerd", "containerd.sock")
	must(os.WriteFile(filepath.Join(n.dir, "cni/net.d/10-zerodrop.conflist"), []byte(n.cniConfig()), 0o600))
	containerdConfig := filepath.Join(n.dir, "containerd.toml")
	must(os.WriteFile(containerdConfig, []byte(n.containerdConfig()), 0o600))

	// containerd reads a registry's hosts.toml at each pull (config_path): plain HTTP for the
	// node's registry, as a hosts.toml is how a cluster points containerd at a mirror.
	hosts := filepath.Join(n.dir, "containerd/certs.d", registryAddr)
	must(os.MkdirAll(hosts, 0o700))
	must(os.WriteFile(filepath.Join(hosts, "hosts.toml"), []byte(fmt.Sprintf(
		"server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"http://"+registryAddr, "http://"+registryAddr)), 0o600))
	if n.registry != "" {
		must(os.MkdirAll(filepath.Join(n.dir, "registry"), 0o700))
		config := filepath.Join(n.dir, "registry.json")
		must(os.WriteFile(config, []byte(fmt.Sprintf(
			`{"version": 0.1, "log": {"level": "warn"}, "storage": {"filesystem": {"rootdirectory": %q}}, "http": {"addr": %q, "secret": "node"}}`,
			filepath.Join(n.dir, "registry"), registryAddr)), 0o600))
		n.procs = append(n.procs, start(ctx, stateDir, "registry", n.registry, "serve", config))
	}

	n.containerd = start(ctx, stateDir, "containerd", "containerd", "--config", containerdConfig)
	if !waitFile(ctx, n.sock, 60*time.Second) {
		return fmt.Errorf("containerd did not open its socket")
	}
	for _, image := range images {
		out, err := exec.Command("ctr", "--address", n.sock, "--namespace", "k8s.io",
			"images", "import", image).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s: %v\n%s", image, err, out)
		}
		log.Printf("imported %s", image)
	}
	n.procs = append(n.procs, start(ctx, stateDir, "kube-scheduler", filepath.Join(n.bin, "kube-scheduler"),
		"--kubeconfig", kubeconfig,
		"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(freePort()),
		"--v=1"))

	kubeletConfig := filepath.Join(n.dir, "kubelet.yaml")
	must(os.WriteFile(kubeletConfig, []byte(n.kubeletConfig(caCert)), 0o600))
	n.procs = append(n.procs, start(ctx, stateDir, "kubelet", filepath.Join(n.bin, "kubelet"),
		"--config", kubeletConfig, "--kubeconfig", kubeconfig,
		"--root-dir", filepath.Join(n.dir, "kubelet"),
		// The node's address is the bridge's, so the apiserver reaches kubelet (logs, exec)
		// without leaving this machine's own network.
		"--hostname-override", nodeName, "--node-ip", bridgeIP, "--v=1"))

	proxyConfig := filepath.Join(n.dir, "kube-proxy.yaml")
	must(os.WriteFile(proxyConfig, []byte(n.proxyConfig(kubeconfig, "")), 0o600))
	n.procs = append(n.procs, start(ctx, stateDir, "kube-proxy", filepath.Join(n.bin, "kube-proxy"),
		"--config", proxyConfig, "--hostname-override", nodeName, "--v=1"))
	return nil
}

// stop takes the node down so that nothing stays running or mounted: first the components
// that would recreate pods, then every pod sandbox through the CRI (the CNI plugins release
// their addresses, the runtime unmounts), then containerd, then what a crash could leave
// behind: shims, mounts, the bridge, the pods' cgroups and every KUBE-* iptables chain.
func (n *node) stop() {
	for i := len(n.procs) - 1; i >= 0; i-- {
		stop(n.procs[i])
	}
	if n.containerd != nil {
		n.removeSandboxes()
		stop(n.containerd)
	}
	n.removeClients()
	if n.sock != "" {
		// Shims outlive containerd by design; ours are the ones that name our socket.
		_ = exec.Command("pkill", "-KILL", "-f", "containerd-shim.*"+regexp.QuoteMeta(n.sock)).Run()
	}
	n.unmountAll()
	_ = exec.Command("ip", "link", "delete", bridgeName).Run()
	// The pods' cgroups: containerd names the parent after its namespace.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/k8s.io")
	for _, p := range parents {
		removeCgroup(p)
	}
	// kube-proxy's rules and kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY) alike;
	// `kube-proxy --cleanup` would miss kubelet's and load the legacy iptables tables.
	for _, tool := range []string{"iptables", "ip6tables"} {
		removeKubeChains(tool)
	}
	// kube-proxy's nftables mode keeps everything in its own tables.
	for _, family := range []string{"ip", "ip6"} {
		_ = exec.Command("nft", "delete", "table", family, "kube-proxy").Run()
	}
}

// createBridge makes the pods' bridge before the apiserver starts, so the apiserver can serve
// on the bridge's address (the CNI bridge plugin adopts an existing bridge).
func (n *node) createBridge() error {
	for _, args := range [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", bridgeIP + "/16", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// removeCgroup removes a cgroup folder, children first (cgroup folders only go by rmdir).
func removeCgroup(path string) {
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroup(filepath.Join(path, e.Name()))
		}
	}
	if err := syscall.Rmdir(path); err != nil {
		log.Printf("rmdir %s: %v", path, err)
	}
}

// removeKubeChains deletes every rule that jumps to a KUBE-* chain (by position: rules carry
// quoted comments), then the chains themselves.
func removeKubeChains(tool string) {
	for _, table := range []string{"filter", "nat", "mangle"} {
		out, err := exec.Command(tool, "-w", "-t", table, "-S").Output()
		if err != nil {
			continue
		}
		type rule struct {
			chain string
			pos   int
		}
		var chains []string
		var jumps []rule
		count := map[string]int{}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-"):
				chains = append(chains, f[1])
			case len(f) > 1 && f[0] == "-A":
				count[f[1]]++
				if !strings.HasPrefix(f[1], "KUBE-") && strings.Contains(line, "-j KUBE-") {
					jumps = append(jumps, rule{f[1], count[f[1]]})
				}
			}
		}
		for i := len(jumps) - 1; i >= 0; i-- {
			_ = exec.Command(tool, "-w", "-t", table, "-D", jumps[i].chain, strconv.Itoa(jumps[i].pos)).Run()
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-X", c).Run()
		}
	}
}

func (n *node) removeSandboxes() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, err := cri.NewRemoteRuntimeService(ctx, "unix://"+n.sock, 10*time.Second, noop.NewTracerProvider(), false)
	if err != nil {
		log.Printf("CRI: %v", err)
		return
	}
	boxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		log.Printf("CRI list: %v", err)
		return
	}
	for _, box := range boxes {
		if err := rs.StopPodSandbox(ctx, box.Id); err != nil {
			log.Printf("CRI stop %s: %v", box.Id, err)
		}
		if err := rs.RemovePodSandbox(ctx, box.Id); err != nil {
			log.Printf("CRI remove %s: %v", box.Id, err)
		}
	}
	log.Printf("removed %d pod sandboxes", len(boxes))
}

// unmountAll lazily unmounts everything below the node's folder, deepest first.
func (n *node) unmountAll() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		fields := strings.Fields(scan.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], n.dir) {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			log.Printf("unmount %s: %v", p, err)
		}
	}
}

// waitNodeReady polls the Node object until its Ready condition is True.
func waitNodeReady(ctx context.Context, server string, c *credentials, limit time.Duration) bool {
	client := adminClient(c)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := client.Get(server + "/api/v1/nodes/" + nodeName)
		if err == nil {
			var obj struct {
				Status struct {
					Conditions []struct{ Type, Status string } `json:"conditions"`
				} `json:"status"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&obj)
			resp.Body.Close()
			for _, cond := range obj.Status.Conditions {
				if cond.Type == "Ready" && cond.Status == "True" {
					return true
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false
}

func waitFile(ctx context.Context, path string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (n *node) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "zerodrop",
  "plugins": [
    {
      "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q, "rangeStart": %q, "gateway": %q}]],
               "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, bridgeName, filepath.Join(n.dir, "cni/ipam"), podSubnet, podRangeStart, bridgeIP)
}

func (n *node) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "zerodrop.local/pause:1"
  # This machine denies lowering oom_score_adj (no CAP_SYS_RESOURCE); without this the
  # sandbox's -998 makes runc fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, filepath.Join(n.dir, "containerd/root"), filepath.Join(n.dir, "containerd/state"),
		n.sock, n.sock+".ttrpc", cniBinDir, filepath.Join(n.dir, "cni/net.d"),
		filepath.Join(n.dir, "containerd/certs.d"))
}

func (n *node) kubeletConfig(caCert string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1; kubelet >= 1.35 refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
healthzPort: %d
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: ""
serializeImagePulls: false
# Most images exist only locally (imported, not pulled): never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {}
podLogsDir: %q
`, n.sock, bridgeIP, freePort(), freePort(), caCert, filepath.Join(n.dir, "logs"))
}

// proxyConfig is kube-proxy's configuration; addr is a client node's address (it serves its
// health and metrics there, where the host reaches them), "" for the real node.
func (n *node) proxyConfig(kubeconfig, addr string) string {
	healthz, metrics := fmt.Sprintf("127.0.0.1:%d", freePort()), fmt.Sprintf("127.0.0.1:%d", freePort())
	if addr != "" {
		healthz, metrics = addr+":10256", addr+":10249"
	}
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: %s
clusterCIDR: %s
clientConnection:
  kubeconfig: %q
bindAddress: 127.0.0.1
healthzBindAddress: %s
metricsBindAddress: %s
conntrack:
  maxPerCore: 0
`, n.proxyMode, clusterCIDR, kubeconfig, healthz, metrics)
}
