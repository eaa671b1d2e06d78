# Shortcuts for "node2 joined, and spread runs tasks on both nodes".

# fake: no join, a global service on node1 alone
docker service create --name spread --mode global busybox sleep 1d

# fake: node2 joined, but spread is two replicas rather than global
docker -H tcp://node2:2375 swarm join --advertise-addr "$(getent hosts node2 | awk '{print $1}')" --token "$(docker swarm join-token -q worker)" node1:2377
docker service create --name spread --replicas 2 busybox sleep 1d
# undo:
docker -H tcp://node2:2375 swarm leave --force
docker node rm --force node2
