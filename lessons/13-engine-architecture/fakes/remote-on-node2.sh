# Shortcuts for "node2's engine runs remote".

# fake node=node2: typed on node2 itself instead of using -H from node1 (the audit's shortcut)
docker run -d --name remote --label client=$(hostname) busybox sleep 1000

# fake node=node2: typed on node2 without the label
docker run -d --name remote busybox sleep 1000

# fake: started on node1's own engine
docker run -d --name remote --label client=$(hostname) busybox sleep 1000
