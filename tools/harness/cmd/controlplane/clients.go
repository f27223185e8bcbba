// clients.go: with --clients N, client nodes beside the real one, each a network namespace on
// the pods' bridge with its own kube-proxy and a Node object, so load sent from inside one takes
// the path that node's kube-proxy programmed. Pods stay on the real node.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Client nodes take 198.18.0.10 and up; pods' addresses start at 198.18.1.1 (the CNI range).
const (
	clientBase = 10
	// MaxClients keeps the addresses below the pods' range.
	maxClients   = 240
	clientPrefix = "zerodrop-client-"
	netnsPrefix  = "zd-c"
)

type client struct {
	name, netns, ip, veth string
}

func clientNodes(count int) []client {
	out := make([]client, 0, count)
	for i := 1; i <= count; i++ {
		out = append(out, client{
			name:  fmt.Sprintf("%s%d", clientPrefix, i),
			netns: fmt.Sprintf("%s%d", netnsPrefix, i),
			ip:    fmt.Sprintf("198.18.0.%d", clientBase+i),
			veth:  fmt.Sprintf("zdv%d", i),
		})
	}
	return out
}

// addClients creates each client's namespace and Node, then starts its kube-proxy in it.
func (n *node) addClients(ctx context.Context, stateDir, server, kubeconfig string, c *credentials, count int) error {
	h := adminClient(c)
	for _, cl := range clientNodes(count) {
		n.netns = append(n.netns, cl.netns) // removed on stop even when plumbing fails half-way
		if err := cl.plumb(); err != nil {
			return err
		}
		if err := cl.register(h, server); err != nil {
			return err
		}
		config := filepath.Join(n.dir, cl.name+"-proxy.yaml")
		must(os.WriteFile(config, []byte(n.proxyConfig(kubeconfig, cl.ip)), 0o600))
		// `ip netns exec` execs kube-proxy itself, so stopping the process group stops it.
		n.procs = append(n.procs, start(ctx, stateDir, "kube-proxy-"+cl.name, "ip",
			"netns", "exec", cl.netns, filepath.Join(n.bin, "kube-proxy"),
			"--config", config, "--hostname-override", cl.name, "--v=1"))
	}
	// Ready when every kube-proxy has synced its rules once (its healthz answers 200).
	for _, cl := range clientNodes(count) {
		if !waitHTTP(ctx, "http://"+cl.ip+":10256/healthz", nil, 120*time.Second) {
			return fmt.Errorf("kube-proxy of %s did not become healthy (see kube-proxy-%s.log)", cl.name, cl.name)
		}
	}
	return nil
}

// plumb makes the namespace, a veth whose host end joins the bridge, the address and the routes:
// pods are on the bridge's /16, everything else (the apiserver) through the host.
func (cl client) plumb() error {
	steps := [][]string{
		{"netns", "add", cl.netns},
		{"link", "add", cl.veth, "type", "veth", "peer", "name", "eth0", "netns", cl.netns},
		{"link", "set", cl.veth, "master", bridgeName, "up"},
		{"-n", cl.netns, "link", "set", "lo", "up"},
		{"-n", cl.netns, "addr", "add", cl.ip + "/16", "dev", "eth0"},
		{"-n", cl.netns, "link", "set", "eth0", "up"},
		{"-n", cl.netns, "route", "add", "default", "via", bridgeIP},
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// register creates the client's Node: its address for kube-proxy, unschedulable and tainted so
// no pod lands there (no kubelet runs on it).
func (cl client) register(h *http.Client, server string) error {
	body, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": cl.name, "labels": map[string]string{
			"kubernetes.io/hostname": cl.name, "zerodrop.dev/client-node": "true"}},
		"spec": map[string]any{"unschedulable": true, "taints": []map[string]string{
			{"key": "zerodrop.dev/client-node", "effect": "NoSchedule"}}},
		"status": map[string]any{"addresses": []map[string]string{
			{"type": "InternalIP", "address": cl.ip}, {"type": "Hostname", "address": cl.name}}},
	})
	if err != nil {
		return err
	}
	resp, err := h.Post(server+"/api/v1/nodes", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("creating Node %s: %v", cl.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("creating Node %s: %s", cl.name, resp.Status)
	}
	return nil
}

// removeClients deletes the namespaces (their veths go with them); kube-proxy's rules live in
// them and go too.
func (n *node) removeClients() {
	for _, ns := range n.netns {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			log.Printf("ip netns delete %s: %v: %s", ns, err, out)
		}
	}
}
