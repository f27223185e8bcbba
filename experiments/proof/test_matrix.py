"""The matrix cell's wait for zerodrop's path index: a pod is given the class's delay or not."""
import matrix


def pod(sleep=None, waiter_args=None):
    c = {"name": "app"}
    if sleep is not None:
        c["lifecycle"] = {"preStop": {"sleep": {"seconds": sleep}}}
    spec = {"containers": [c]}
    if waiter_args:
        spec["initContainers"] = [{"name": "zerodrop-drain", "args": waiter_args}]
    return {"spec": spec}


def test_the_default_sleep_is_not_the_class_delay():
    assert not matrix.path_delay_given(pod(sleep=5), matrix.CLASS_DELAY["load-balancer"])
    assert not matrix.path_delay_given(pod(), 15)


def test_the_class_sleep_is():
    assert matrix.path_delay_given(pod(sleep=15), matrix.CLASS_DELAY["load-balancer"])


def test_the_adaptive_waiter_counts_once_the_path_set_it():
    # The path behind a balancer: requests, the class's delay as the maximum.
    assert matrix.path_delay_given(pod(waiter_args=["--max=15s", "--count=requests"]), 15)
    # The defaults (30 s, requests) say nothing of the index; connections mean no balancer.
    assert not matrix.path_delay_given(pod(waiter_args=["--max=30s", "--count=requests"]), 15)
    assert not matrix.path_delay_given(pod(waiter_args=["--max=15s", "--count=connections"]), 15)
