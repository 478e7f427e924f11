"""Cluster networks: a stack's services reach each other by name, across hosts.

Each cluster network is one subnet over every node where its tasks run, built
the way Swarm's overlay is: on each such node a Docker bridge network (the
tasks' containers are plugged into it with the addresses the cluster hands
out) and a VXLAN device on that bridge (UDP 4789), whose forwarding entries
send each remote task's frames straight to the node it runs on. ARP is
answered on each node from those entries (`proxy`), so nothing is flooded
between hosts.

A service has a virtual IP on each of its networks. Every node where the
network is present DNATs the VIP to the service's running, healthy tasks
(kube-proxy's iptables way: this kernel has no IPVS). Names are answered by a
DNS server in every manager's worker: containers ask Docker's embedded
resolver, which asks the network's gateway on their node, which the node
DNATs to the DNS server; names the cluster does not know get SERVFAIL, so the
resolver goes on to the host's own servers.

Nothing runs on the hosts: the worker that holds a node's lease programs it
over SSH (`ip`, `bridge`, `iptables-restore`), from what the store says.

    names.py       device, chain and label names
    ipam.py        subnets and addresses (pure)
    view.py        what the store says about the networks, kept current from its events
    desired.py     what one node should have (pure)
    render.py      the commands that take a node from what it has to what it should have
    host.py        running them on a node; its Docker networks
    attach.py      a task joining its networks (the start job's part)
    programmer.py  one programmer per node, under a lease
    dns.py         the DNS server
"""
