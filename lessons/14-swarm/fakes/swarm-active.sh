# Shortcuts for "this engine is an active swarm manager".

# fake node=node2: the swarm started on node2 instead
docker swarm init --advertise-addr $(hostname -i)

# fake: node1 joined a swarm that node2 manages, as a worker
docker -H tcp://node2:2375 swarm init --advertise-addr "$(getent hosts node2 | awk '{print $1}')"
docker swarm join --token "$(docker -H tcp://node2:2375 swarm join-token -q worker)" node2:2377
