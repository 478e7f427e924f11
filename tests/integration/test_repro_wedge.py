import json, time
from tests.integration.cluster import wait_for

STACK = """
services:
  web:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 4
      update_config:
        failure_action: rollback
"""

def test_repro(cluster, tmp_path):
    v1 = cluster.write_stack(tmp_path, STACK.format(image="swarmpy/busybox:latest"), "v1.yml")
    v2 = cluster.write_stack(tmp_path, STACK.format(image="swarmpy/does-not-exist:1"), "v2.yml")
    cluster.deploy(v1, "wedge")
    t0 = time.time()
    done = cluster.cli("stack", "deploy", "-c", str(v2), "wedge", "--timeout", "60", check=False)
    print("deploy v2 rc", done.returncode, time.time() - t0, done.stdout[-2000:], done.stderr[-2000:])
    for i in range(6):
        svc = cluster.json("service", "ls")
        print(json.dumps([(s["name"], s["replicas"], s["spec_version"], s["update_status"]) for s in svc]))
        for t in cluster.tasks("wedge_web"):
            print(t["name"], t["id"], t["spec_version"], t["image"], t["state"], t["desired_state"], t["node_id"], t["error"], t["message"], t["created_at"])
        time.sleep(5)
    done = cluster.cli("service", "scale", "wedge_web=2", timeout=90, check=False)
    print("scale rc", done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    done = cluster.cli("stack", "rm", "wedge", "--timeout", "40", check=False)
    print("rm rc", done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    print(cluster.containers("wedge", running_only=False))
    assert False
