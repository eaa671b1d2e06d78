/*
 * node-connect PID CGROUP PATH: connects to the unix socket at PATH as seen inside a learner's node, and
 * hands the connected socket to the Berth server that started it (terminal/attach.ts).
 *
 * The server runs as root on the host; PATH is a place the learner controls (/tmp/.berth-tab-N). Three
 * checks keep it from ever reaching a socket outside the node (runtime/engine/SECURITY.md, "Terminal attach"):
 *  1. /proc/PID is opened once and everything after goes through that directory, so a pid reused by
 *     another process after the check fails (ESRCH) instead of pointing elsewhere;
 *  2. the process's cgroup must be the node's (CGROUP names the container, e.g. its 64-hex id for Docker,
 *     lxc.payload.<instance> for Incus), so the root used below is the node's and not some other process's;
 *  3. PATH is resolved with openat2() under /proc/PID/root with RESOLVE_IN_ROOT (".." and absolute names
 *     stay inside the node's root) and RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS (a learner's symlink,
 *     /proc/<pid>/root trick included, is refused, not followed); the result must be a socket.
 * Only then is it connected, through /proc/self/fd/N (the inode just opened, not the name again).
 *
 * The connected socket goes back over Node's IPC channel (the fd in NODE_CHANNEL_FD, a unix socketpair) as a
 * NODE_HANDLE message with the fd in SCM_RIGHTS: Node turns it into a net.Socket ('message' event on the
 * child). The helper then waits for Node's acknowledgement so the fd is not closed while in flight.
 *
 * Exit codes: 0 handed over; 2 no socket at PATH (no shell yet); 3 refused (a stale socket); 4 not the node
 * (cgroup) or not a socket; 1 anything else. The reason goes to stderr.
 * Built with gcc -static at first use, under the state folder.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(int code, const char *what) {
    fprintf(stderr, "node-connect: %s: %s\n", what, errno ? strerror(errno) : "refused");
    return code;
}

/* True when `needle` is one whole part of a cgroup path in `text`: bounded by / - . or the line's end. */
static int in_cgroup(const char *text, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) {
        char before = p == text ? '\n' : p[-1];
        char after = p[n];
        if ((before == '/' || before == '-' || before == '.') && (after == '/' || after == '.' || after == '\n' || after == '\0'))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4 || strlen(argv[2]) < 8) { fprintf(stderr, "usage: node-connect PID CGROUP PATH\n"); return 1; }
    const char *chan = getenv("NODE_CHANNEL_FD");
    if (!chan) { fprintf(stderr, "node-connect: no NODE_CHANNEL_FD (start it from Node with an ipc channel)\n"); return 1; }
    int ipc = atoi(chan);
    char *end;
    long pid = strtol(argv[1], &end, 10);
    if (*end || pid < 2) { fprintf(stderr, "node-connect: bad pid %s\n", argv[1]); return 1; }
    /* A server that dies mid-way must not leave this waiting forever. */
    alarm(10);

    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", pid);
    int procfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) return fail(1, "open /proc/PID");

    /* 2: the process is in the node's cgroup. */
    int cg = openat(procfd, "cgroup", O_RDONLY | O_CLOEXEC);
    if (cg < 0) return fail(1, "open cgroup");
    char text[8192];
    ssize_t len = read(cg, text, sizeof text - 1);
    close(cg);
    if (len <= 0) return fail(1, "read cgroup");
    text[len] = '\0';
    errno = 0;
    if (!in_cgroup(text, argv[2])) return fail(4, "process is not in the node's cgroup");

    /* 3: the path, resolved inside the node's root only, symlinks refused. */
    int root = openat(procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return fail(1, "open /proc/PID/root");
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int target = (int)syscall(SYS_openat2, root, argv[3], &how, sizeof how);
    if (target < 0) return fail(errno == ENOENT ? 2 : 1, "resolve PATH in the node");
    struct stat st;
    if (fstat(target, &st) < 0) return fail(1, "stat PATH");
    errno = 0;
    if (!S_ISSOCK(st.st_mode)) return fail(4, "PATH is not a socket");

    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail(1, "socket");
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d", target);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) return fail(errno == ECONNREFUSED ? 3 : 1, "connect");

    /* Node's IPC framing (serialization "json"): one JSON message per line; the fd rides with it. */
    static const char msg[] = "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\",\"msg\":{\"berth\":\"connected\"}}\n";
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = sizeof msg - 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &s, sizeof(int));
    ssize_t sent;
    do sent = sendmsg(ipc, &mh, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)iov.iov_len) return fail(1, "send the socket to the server");

    /* Node answers NODE_HANDLE_ACK once it holds the socket (or closes the channel). */
    char ack[256];
    ssize_t r;
    do r = read(ipc, ack, sizeof ack); while (r < 0 && errno == EINTR);
    return 0;
}
