"""The three-node test cluster itself: work lands on the chosen node, a killed node leaves nothing behind."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.multinode, pytest.mark.slow]


def test_kill_node_takes_its_processes_objects_and_disk(multinode_cluster) -> None:
    import ray

    cluster = multinode_cluster
    assert sorted(n.resource for n in cluster.worker_nodes) == ["node_a", "node_b"]
    assert ray.get_runtime_context().get_node_id() == cluster.head.node_id  # the driver is on the head

    @ray.remote(num_cpus=0)
    def where() -> str:
        return ray.get_runtime_context().get_node_id()

    @ray.remote(num_cpus=0, max_retries=0)
    def held() -> bytes:
        return b"x" * 2**20  # 1 MiB: kept in the object store of the node that made it

    node_a = cluster.node("node_a")
    assert ray.get(where.options(resources={"node_a": 1}).remote()) == node_a.node_id
    ref = held.options(resources={"node_a": 1}).remote()
    ray.wait([ref], fetch_local=False)
    procs = node_a.processes()
    assert len(procs) >= 3  # raylet, agents, workers
    cluster.kill_node(node_a)
    assert not any(p.is_running() and p.status() != "zombie" for p in procs)
    assert not node_a.temp_dir.exists() and not node_a.spill_dir.exists()
    with pytest.raises(ray.exceptions.ObjectLostError):
        ray.get(ref, timeout=60)  # no retries: the only copy went with the node
    deadline = time.monotonic() + 60  # the GCS declares it dead after its missed health checks
    while node_a.node_id in (alive := {n["NodeID"] for n in ray.nodes() if n["Alive"]}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node_a.node_id not in alive and cluster.node("node_b").node_id in alive
    back = cluster.add_node("node_a")
    assert ray.get(where.options(resources={"node_a": 1}).remote()) == back.node_id != node_a.node_id
