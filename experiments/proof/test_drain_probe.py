"""drain_probe's reading of `ss -tinaH` (a sample cut from a real run in a pod's namespace, as
nobody) and its per-second count of new peers."""
import drain_probe

SS = """LISTEN    0      128        0.0.0.0:8080     0.0.0.0:*    
\t bbr cwnd:10
ESTAB     0      0      198.18.1.15:8080  198.18.0.1:34646
\t cubic wscale:7,7 rto:204 rtt:0.05/0.02 bytes_sent:4210 bytes_acked:4210 bytes_received:9234 segs_out:40
TIME-WAIT 0      0      198.18.1.15:8080 198.18.0.12:37291
"""


def test_ss_gives_each_peer_with_its_bytes_received_and_none_for_time_wait():
    assert drain_probe.parse_ss(SS) == {"198.18.0.1:34646": 9234, "198.18.0.12:37291": None}


def test_new_peers_are_counted_in_the_second_they_were_first_seen_by_source():
    samples = [(99.5, {"10.0.0.1:1": None}), (100.2, {"10.0.0.1:1": None, "10.0.0.2:5": 10}),
               (101.7, {"10.0.0.2:5": 12, "10.0.0.2:6": None, "10.0.0.1:2": None})]
    assert drain_probe.new_peers(samples, deleted=100.0) == {
        -1: {"10.0.0.1": 1}, 0: {"10.0.0.2": 1}, 1: {"10.0.0.2": 1, "10.0.0.1": 1}}
