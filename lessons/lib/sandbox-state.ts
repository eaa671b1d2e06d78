// Lets the verifier try several fakes on one sandbox: a snapshot of what a node holds (containers,
// images, volumes, networks, swarm services, the workspace) before the fakes of a step, and a restore
// after each fake that removes what it added, puts back names, run states and tags it changed, and
// prints whatever still differs. Cheaper than a fresh sandbox replayed to the step for every fake.

const DIR = '/tmp/berth-fake-state';

// One sorted line per object. Swarm task containers are left out: the services stand for them.
const STATE = String.raw`
berth_state() {
  {
    docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.State}} {{.Label "com.docker.swarm.task.id"}}' | awk 'NF==3{print "C",$0}'
    docker images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sed 's/^/I /'
    docker volume ls -q | sed 's/^/V /'
    docker network ls --no-trunc --format '{{.Name}} {{.ID}}' | sed 's/^/N /'
    docker info --format 'S {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'
    if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
      docker service ls -q | xargs -r docker service inspect --format 'SV {{.ID}} {{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}} {{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}}'
    fi
    cd ~ && find . -path ./.docker -prune -o -mindepth 1 -printf 'H %P %y %s %T@\n'
  } | LC_ALL=C sort
}
`;

export const SNAPSHOT = `${STATE}
rm -rf ${DIR} && mkdir -p ${DIR} && berth_state > ${DIR}/before &&
tar -C ~ --exclude=./.docker -cf ${DIR}/home.tar .
`;

export const RESTORE = String.raw`${STATE}
d=${DIR}; berth_state > $d/now
pick() { awk -v k="$1" '$1==k' "$2"; }
ids() { pick "$1" "$2" | awk '{print $2}' | LC_ALL=C sort -u; }
# Services the fake made, then their tasks' containers.
for s in $(LC_ALL=C comm -13 <(ids SV $d/before) <(ids SV $d/now)); do
  docker service rm "$s" >/dev/null
  for i in $(seq 30); do [ -z "$(docker ps -aq --filter label=com.docker.swarm.service.id=$s)" ] && break; sleep 1; done
done
if pick S $d/before | grep -q ' inactive ' && ! pick S $d/now | grep -q ' inactive '; then docker swarm leave --force >/dev/null; fi
# Containers: new ones go; old ones get their name and run state back.
for c in $(LC_ALL=C comm -13 <(ids C $d/before) <(ids C $d/now)); do docker rm -f -v "$c" >/dev/null; done
pick C $d/before | while read -r _ id name st; do
  now=$(pick C $d/now | awk -v id="$id" '$2==id')
  [ -z "$now" ] && continue
  set -- $now
  [ "$3" != "$name" ] && docker rename "$id" "$name"
  if [ "$4" != "$st" ]; then
    [ "$4" = paused ] && docker unpause "$id" >/dev/null
    if [ "$st" = running ]; then docker start "$id" >/dev/null; else docker stop -t 1 "$id" >/dev/null; fi
  fi
done
for v in $(LC_ALL=C comm -13 <(ids V $d/before) <(ids V $d/now)); do docker volume rm -f "$v" >/dev/null; done
for n in $(LC_ALL=C comm -13 <(pick N $d/before | awk '{print $3}' | sort) <(pick N $d/now | awk '{print $3}' | sort)); do docker network rm "$n" >/dev/null; done
# Images: tags the fake added go, tags it moved or removed come back (the old image is still there).
pick I $d/now | grep -v '^I <none>:<none> ' | while read -r _ tag id; do
  [ -n "$(pick I $d/before | awk -v t="$tag" '$2==t')" ] || docker rmi "$tag" >/dev/null
done
pick I $d/before | grep -v '^I <none>:<none> ' | while read -r _ tag id; do
  [ -n "$(pick I $d/now | awk -v t="$tag" -v i="$id" '$2==t && $3==i')" ] || docker tag "$id" "$tag" 2>/dev/null
done
for i in $(LC_ALL=C comm -13 <(pick I $d/before | grep '<none>:<none>' | awk '{print $3}' | sort) <(pick I $d/now | grep '<none>:<none>' | awk '{print $3}' | sort)); do docker rmi "$i" >/dev/null 2>&1; done
# The workspace, only if the fake touched it.
if ! cmp -s <(pick H $d/before) <(pick H $d/now); then
  (cd ~ && find . -mindepth 1 -maxdepth 1 ! -name .docker -exec rm -rf {} + ; tar -xf $d/home.tar) 2>/dev/null
fi
berth_state > $d/after
LC_ALL=C diff $d/before $d/after | grep '^[<>]'
true
`;
