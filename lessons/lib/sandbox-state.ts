// Lets the verifier try several fakes on one sandbox: a snapshot of what a node holds (containers,
// images, volumes, networks, swarm services, the workspace) before the fakes of a step, and a restore
// after each fake that removes what it added, puts back names, run states and tags it changed, and
// prints whatever still differs. Cheaper than a fresh sandbox replayed to the step for every fake.

const DIR = '/tmp/berth-fake-state';

// One sorted line per object. Swarm task containers are left out: the services stand for them. The
// Engine API is read with curl, not the docker CLI: on a loaded machine each CLI start costs seconds.
const STATE = String.raw`
sock=$(echo "$DOCKER_HOST" | sed 's|^unix://||'); [ -n "$sock" ] || sock=/var/run/docker.sock
api() { curl -sf --unix-socket "$sock" "$@"; }
get() { api "http://engine$1"; }
post() { api -X POST -o /dev/null "http://engine$1"; }
del() { api -X DELETE -o /dev/null "http://engine$1"; }
berth_state() {
  {
    get '/containers/json?all=1' | jq -r '.[] | select(.Labels["com.docker.swarm.task.id"] == null) | "C \(.Id) \(.Names[0] | ltrimstr("/")) \(.State)"'
    get /images/json | jq -r '.[] | .Id as $id | ((.RepoTags // []) | if length == 0 then ["<none>:<none>"] else . end)[] | "I \(.) \($id)"'
    # Digests too: a tag put back after a fake removed it has lost the digest a pull or push recorded,
    # and later steps read that digest (lesson 07 pulls by it).
    get /images/json | jq -r '.[] | .Id as $id | (.RepoDigests // [])[] | "D \(.) \($id)"'
    get /volumes | jq -r '(.Volumes // [])[] | "V \(.Name)"'
    # docker_gwbridge and ingress are the engine's own, made by a swarm init or join (docker_gwbridge even
    # outlives the swarm): not something a learner's step or a fake made.
    get /networks | jq -r '.[] | select(.Name != "docker_gwbridge" and .Name != "ingress") | "N \(.Name) \(.Id)"'
    sw=$(get /info | jq -r '"\(.Swarm.LocalNodeState) \(.Swarm.ControlAvailable)"')
    echo "S $sw"
    case "$sw" in *' true')
      get /services | jq -r '.[] | "SV \(.ID) \(.Spec.Name) \(.Spec.TaskTemplate.ContainerSpec.Image) \(if .Spec.Mode.Replicated then .Spec.Mode.Replicated.Replicas else "global" end)"';;
    esac
    # The workspace: what is not hidden (the engine keeps its own data under ~/.local).
    # Whole seconds: tar puts mtimes back without their fraction.
    cd ~ && find . -mindepth 1 -path './.*' -prune -o -printf 'H %P %y %s %T@\n' | sed 's/\.[0-9]*$//'
  } | LC_ALL=C sort
}
`;

export const SNAPSHOT = String.raw`${STATE}
rm -rf ${DIR} && mkdir -p ${DIR} && berth_state > ${DIR}/before &&
(cd ~ && find . -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%P\0' | tar --null -T - -cf ${DIR}/home.tar)
`;

// What to undo is worked out by one awk program over the two states (one process, where a shell loop
// would start hundreds on a busy machine), as ordered API calls. Objects are matched by name where an
// undo may have recreated them (a compose project brought back up), so the comparison at the end leaves
// ids out of containers, networks and services.
const PLAN = String.raw`
FNR == NR { B[$0] = 1; k = $1
  if (k == "C") { bid[$2] = $3; bst[$3] = $4; bname[$3] = 1 }
  if (k == "I") { btag[$2] = $3; bimg[$3] = 1 }
  if (k == "V" || k == "N" || k == "SV") bobj[k, (k == "SV" ? $3 : $2)] = 1
  if (k == "S") bsw = $2
  if (k == "H") bh = bh $0 "\n"
  next }
{ k = $1
  if (k == "C") { cid[++nc] = $2; cname[nc] = $3; cst[nc] = $4 }
  if (k == "I") { ntag[$2] = $3; nimg[$3] = 1 }
  if ((k == "V" || k == "N" || k == "SV") && !((k, (k == "SV" ? $3 : $2)) in bobj)) {
    if (k == "SV") print 1, "SVC", $3; if (k == "V") print 5, "DEL", "/volumes/" $2 "?force=1"; if (k == "N") print 6, "DEL", "/networks/" $2 }
  if (k == "S" && bsw == "inactive" && $2 != "inactive") print 2, "POST", "/swarm/leave?force=1"
  if (k == "H") nh = nh $0 "\n" }
END {
  for (i = 1; i <= nc; i++) {
    id = cid[i]; name = cname[i]
    if (id in bid) { if (bid[id] != name) { print 3, "POST", "/containers/" id "/rename?name=" bid[id]; name = bid[id] } }
    else if (!(name in bname)) { print 3, "DEL", "/containers/" id "?force=1&v=1"; continue }
    seen[name] = cst[i]
  }
  for (name in bst) if ((name in seen) && seen[name] != bst[name]) {
    if (seen[name] == "paused") print 4, "POST", "/containers/" name "/unpause"
    print 4, "POST", "/containers/" name (bst[name] == "running" ? "/start" : "/stop?t=1")
  }
  for (t in btag) if (t != "<none>:<none>" && ntag[t] != btag[t] && (btag[t] in nimg)) {
    n = split(t, part, ":"); repo = substr(t, 1, length(t) - length(part[n]) - 1)
    print 7, "POST", "/images/" btag[t] "/tag?repo=" repo "&tag=" part[n]
  }
  # A tag the fake put on an image that was here before goes even if a stopped container (an old swarm task)
  # uses the image, which refuses a plain removal of its last tag. The engine may then drop the digests of the
  # image or the image itself; the second pass below pulls them back by digest.
  for (t in ntag) if (t != "<none>:<none>" && !(t in btag)) print 8, "DEL", "/images/" t ((ntag[t] in bimg) ? "?force=1" : "")
  if (bh != nh) print 10, "HOME", "-"
}
`;

export const RESTORE = String.raw`${STATE}
d=${DIR}; berth_state > $d/now
# Nothing changed (a fake that only failed to make anything): nothing to do or report.
cmp -s $d/before $d/now && exit 0
awk '${PLAN}' $d/before $d/now | sort -n -s -k1,1 | while read -r _ verb arg; do
  case "$verb" in
    POST) post "$arg";;
    DEL) del "$arg";;
    SVC) del "/services/$arg"
      for i in $(seq 30); do [ "$(get '/containers/json?all=1' | jq --arg s "$arg" '[.[] | select(.Labels["com.docker.swarm.service.name"] == $s)] | length')" = 0 ] && break; sleep 1; done;;
    HOME) (cd ~ && find . -mindepth 1 -maxdepth 1 ! -name '.*' -exec rm -rf {} + ; tar -xf $d/home.tar) 2>/dev/null;;
  esac
done
# Second pass, on the state the plan left. Images: a digest lost (to the fake, or to untagging the fake's tag)
# is pulled again by that digest, which also brings back an image the fake removed, and the image's tags are
# put back on it; every image the fake brought is removed by id, whatever still names it (the plan removes
# only tags). Why digests matter: a tag put back by hand has lost the digest a pull or push recorded, and later
# steps read it (lesson 07 pulls by it).
berth_state > $d/mid
awk 'FNR == NR { if ($1 == "D" || $1 == "I") { b[$1 " " $2] = $3; ids[$3] = 1 } next }
  $1 == "D" || $1 == "I" { n[$1 " " $2] = $3; now[$3] = 1 }
  END {
    for (k in b) if (k ~ /^D / && !(k in n)) { print 1, "PULL", substr(k, 3); back[b[k]] = 1 }
    for (k in b) if (k ~ /^I / && k != "I <none>:<none>" && n[k] != b[k] && ((b[k] in now) || (b[k] in back))) print 2, "TAG", b[k], substr(k, 3)
    for (i in now) if (!(i in ids)) print 3, "RMI", i
  }' $d/before $d/mid | sort -n -s -k1,1 | while read -r _ verb arg ref; do
  case "$verb" in
    # The registry it came from was started again by the plan a moment ago and may not answer yet.
    PULL) name=$(echo "$arg" | cut -d@ -f1); digest=$(echo "$arg" | cut -d@ -f2)
      for i in 1 2 3 4 5; do api -X POST -o /dev/null "http://engine/images/create?fromImage=$name&tag=$digest" && break; sleep 1; done;;
    TAG) repo=$(echo "$ref" | sed 's/:[^:]*$//'); tag=$(echo "$ref" | sed 's/.*://'); post "/images/$arg/tag?repo=$repo&tag=$tag";;
    RMI) del "/images/$arg?force=1";;
  esac
done
berth_state > $d/after
same() { awk '$1=="C" {print $1, $3, $4; next} $1=="N" {print $1, $2; next} $1=="SV" {print $1, $3, $4, $5; next} {print}' "$1" | LC_ALL=C sort; }
LC_ALL=C diff <(same $d/before) <(same $d/after) | grep '^[<>]'
true
`;

// The shape of a node's state that a check must leave as it found it: containers by id and name (not their run
// state, which a container changes by itself when its command ends), images, digests, volumes, networks by name,
// the swarm, services, and the workspace's paths (not their sizes or times, which a running container writing to
// a bind mount changes).
const SHAPE = String.raw`$1 == "C" { print $1, $2, $3; next } $1 == "N" { print $1, $2; next } $1 == "SV" { print $1, $3, $4, $5; next } $1 == "H" { print $1, $2, $3; next } { print }`;

/**
 * A check between two reads of its node's state, in one exec, with the check's own exit status. Any difference
 * comes out as `@@changed` lines. Why: the verifier checks each step before and after doing it, while skipping to
 * a step replays the earlier steps with no checks in between; the two reach the same state only if checks only
 * look, and this proves it for every check the verifier runs.
 */
export function readOnlyCheck(check: string): string {
  return String.raw`${STATE}
D=${DIR}-check; mkdir -p $D
berth_state | awk '${SHAPE}' > $D/a
( ${check}
) > /dev/null 2>&1; rc=$?
berth_state | awk '${SHAPE}' > $D/b
LC_ALL=C diff $D/a $D/b | grep '^[<>]' | head -4 | sed 's/^/@@changed /'
exit $rc
`;
}

/** The differences readOnlyCheck reported, or '' when the check left its node as it found it. */
export const changedBy = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('@@changed '))
    .map((l) => l.slice(10))
    .join(' / ');

/**
 * One fake on a one-node sandbox in a single exec (each exec costs seconds on a busy machine): the fake
 * command by command, the check, the fake's undo, then RESTORE. Each runs in a subshell, so an `exit` or
 * a `cd` stays inside it. The output is sections opened by `@@` lines; `parseRound` reads them.
 */
export function fakeRound(fake: string, check: string, undo: string): string {
  return String.raw`D=${DIR}; mkdir -p $D
( ${fake}
) > $D/fake.out 2>&1; fr=$?
cr=-; if [ $fr -eq 0 ]; then ( ${check}
) > /dev/null 2>&1; cr=$?; fi
: > $D/undo.out; ur=0
${
  undo
    ? String.raw`( ${undo}
) > $D/undo.out 2>&1; ur=$?`
    : ''
}
( ${RESTORE}
) > $D/left.out 2>&1
echo "@@fake"; tail -c 3000 $D/fake.out; echo
echo "@@undo"; tail -c 3000 $D/undo.out; echo
echo "@@left"; cat $D/left.out
echo "@@result $fr $cr $ur"
`;
}

export function parseRound(
  stdout: string,
): { fake: string; undo: string; left: string; fakeExit: number; checkExit: number | undefined; undoExit: number } | undefined {
  const m = /^@@result (\d+) (-|\d+) (\d+)$/m.exec(stdout);
  if (!m) return undefined;
  const section = (name: string) => (new RegExp(`^@@${name}\\n([\\s\\S]*?)(?=^@@)`, 'm').exec(stdout)?.[1] ?? '').trim();
  return {
    fake: section('fake'),
    undo: section('undo'),
    left: section('left'),
    fakeExit: Number(m[1]),
    checkExit: m[2] === '-' ? undefined : Number(m[2]),
    undoExit: Number(m[3]),
  };
}
