"""The lagging load balancer's view: additions at once, removals `lag` seconds late."""
import lagging_lb


def test_a_pod_that_stops_being_ready_is_routed_to_for_the_lag():
    v = lagging_lb.View(lag=20)
    v.update("ns", {"10.0.0.1:80", "10.0.0.2:80"}, now=100)
    v.update("ns", {"10.0.0.2:80", "10.0.0.3:80"}, now=101)
    # The new pod at once, the old one still: a deregistration delay.
    assert v.servers(now=102) == {"ns": {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}}
    assert v.next_due() == 121
    assert v.servers(now=121) == {"ns": {"10.0.0.2:80", "10.0.0.3:80"}}
    assert v.next_due() is None


def test_a_pod_ready_again_before_its_removal_is_due_stays():
    v = lagging_lb.View(lag=20)
    v.update("ns", {"10.0.0.1:80"}, now=100)
    v.update("ns", set(), now=101)
    v.update("ns", {"10.0.0.1:80"}, now=105)
    assert v.servers(now=130) == {"ns": {"10.0.0.1:80"}}


def test_ready_endpoints_take_only_ready_ones_with_the_slice_port():
    s = {"ports": [{"name": "http", "port": 8080}],
         "endpoints": [{"addresses": ["198.18.1.5"], "conditions": {"ready": True}},
                       {"addresses": ["198.18.1.6"], "conditions": {"ready": False, "terminating": True}},
                       {"addresses": ["198.18.1.7"], "conditions": {}}]}
    assert lagging_lb.ready_endpoints(s) == {"198.18.1.5:8080"}
    assert lagging_lb.ready_endpoints({"endpoints": s["endpoints"]}) == set()


def test_config_routes_each_namespace_by_host_to_its_pods():
    c = lagging_lb.config({"t-exit": {"198.18.1.5:8080"}})
    assert c["http"]["routers"]["t-exit"] == {"rule": "Host(`t-exit.lb`)", "service": "t-exit",
                                              "entryPoints": ["lb"]}
    assert c["http"]["services"]["t-exit"] == {"loadBalancer": {"servers": [{"url": "http://198.18.1.5:8080"}]}}


def test_the_file_is_rewritten_only_when_the_routes_change(tmp_path):
    f = lagging_lb.ConfigFile(str(tmp_path / "dynamic.yaml"))
    assert f.write({"ns": {"10.0.0.1:80"}})
    # A pod that turned not ready but is still routed to for the lag: the same servers.
    assert not f.write({"ns": {"10.0.0.1:80"}})
    assert f.write({"ns": {"10.0.0.1:80", "10.0.0.2:80"}})
    assert "10.0.0.2:80" in (tmp_path / "dynamic.yaml").read_text()
