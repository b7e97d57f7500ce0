/* SPDX-License-Identifier: MIT */
/*
 * children.c - the launcher's registry of the processes the program starts.
 *
 * A thread started before the program (fil_cli_children_start) listens on
 * an abstract unix socket (fil/children.h) whose name the program gets in
 * FIL_CHILDREN. Each Python process of the tree registers its own state
 * memfd there: the thread makes its folder, <result>/children/<pid>-<name>/
 * (a second registration of a pid that is still listed means the first one
 * replaced its image with exec: it is closed, and dropped if it never
 * allocated), keeps the memfd (a SIGKILLed child's state is still readable)
 * and a pidfd, and answers. When the pidfd says the process ended, how it
 * ended is found: its own exit record in its state, else the wait status
 * its parent noted when it reaped it (or 300 ms without one: not known),
 * and a SIGKILL with the oom_kill counter of its memory cgroup up since it
 * was first seen is the kernel's OOM killer. Then its reports are rendered
 * into its folder by this thread, and the memfd is closed.
 *
 * The tree's view: the sampler (sample.c) calls fil_cli_children_sample
 * every 10 ms with the main program's header; the sum of every live
 * process's header total is the tree's tracked memory, and at each new
 * maximum every process's per-node bytes are copied (a moment), which
 * becomes the tree's peak if it holds more than the peak's copy. So the
 * tree's peak is sampled (it can be missed by up to 10 ms, and the
 * processes are read one after another, microseconds apart), while each
 * figure of a process is one its tracker really stored. A moment is also
 * taken when a process starts an out-of-memory dump (or ends having dumped
 * between two samples), or is found killed by the OOM killer (the dead
 * one's bytes are those of its death).
 *
 * The registry (children[], the moments) is guarded by reg_lock: the
 * thread, the sampler, and the main thread once the program has ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fil/children.h"
#include "fil/common.h"
#include "fil/state.h"

#define NOTE_WAIT_NS UINT64_C(300000000) /* for the parent's note of a signal death */
#define CGROUP_EVERY_NS UINT64_C(100000000)
#define MAX_CONNS 4096

enum { LIVE = 0, ENDED = 1, RENDERING = 2, DONE = 3 };

typedef struct proc_copy {
    int64_t *bytes; /* per-node bytes at the moment */
    uint64_t n, cap;
    uint64_t held;  /* their sum */
} proc_copy_t;

/* One look at a child's memory cgroup that found it alive (watch_cgroup). */
typedef struct cg_look {
    char cg[PATH_MAX];           /* its memory cgroup's counter file */
    fil_cli_oom_tree_t then;     /* its counts (and its v1 subtree's) */
    fil_cli_oom_tree_t cg0_then; /* those of the cgroup it registered in */
} cg_look_t;

typedef struct child {
    pid_t pid, parent;
    uint32_t kind;
    int memfd, pidfd;
    int keep_fd; /* its state, kept after it ended for the tree's view, or -1 */
    int phase; /* LIVE, ENDED, DONE */
    uint64_t end_mono;
    int noted, wstatus; /* the parent's note of its reaping */
    int argc;
    char **argv;
    char folder[256];      /* relative to the main result folder */
    char dir[PATH_MAX];    /* absolute */
    const fil_state_header_t *h; /* read-only map of its header */
    const char *map; size_t map_size; /* the whole file, for moments */
    char cg0[PATH_MAX];    /* the memory cgroup it registered in (counter file) */
    int cg_known;          /* look[] holds a look (watch_cgroup) */
    cg_look_t look[2];     /* the latest look at its cgroup, [1], and the one before */
    fil_child_row_t row;
    proc_copy_t copy[3];   /* its bytes at the peak moment, the oom moment, a try */
} child_t;

typedef struct moment {
    int taken;
    uint64_t t_ns, total;
    proc_copy_t main; /* the main program's bytes */
    uint32_t nprocs;
    int *pids;
    uint64_t *held;
    uint32_t *who; /* child index of each process after the main, FIL_NONE: main */
} moment_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static child_t **children; /* each entry malloc'd: pointers stay valid */
static uint32_t nchildren, cap_children; /* children[nchildren] may be a spare entry */
static moment_t moments[3]; /* 0: the tree's peak, 1: out of memory, 2: a try at 0 */
static uint64_t tree_max;
static fil_cli_children_cfg_t cfg;
static int listen_fd = -1, stop_pipe[2] = {-1, -1};
static int conns[MAX_CONNS], nconns;
static pthread_t thread;
static int started;
static volatile int stopping;
static uint64_t deadline_mono;
static uint64_t cgroup_every_ns = CGROUP_EVERY_NS; /* FIL_TEST_CGROUP_LOOK_MS (tests) */
static const fil_state_header_t *main_h; /* the sampler's map of the main header */
static const char *main_map; static size_t main_map_size;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- who a process is ---------------------------------------------------- */

/* The start of /proc/<pid>/<name> into buf[0..cap), NUL-terminated: its
 * length, or <= 0 if it cannot be read. */
static ssize_t read_proc(pid_t pid, const char *name, char *buf, size_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, cap - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0)
        buf[n] = 0;
    return n;
}

#define CMDLINE_CAP ((size_t)1 << 20)
#define CMDLINE_CUT "[command line cut at 1 MiB]"

/* /proc/pid/cmdline as a malloc'd argv (argc into *argc); NULL if
 * unreadable. All of it up to CMDLINE_CAP (a kernel allows a few MiB):
 * beyond, the argument it stops in is dropped and the last word says so. */
static char **read_cmdline(pid_t pid, int *argc) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = NULL; /* cap bytes, and room for the marker after them */
    size_t n = 0, cap = 0;
    int cut = 0;
    for (;;) {
        if (n == cap) {
            char one;
            if (cap == CMDLINE_CAP) {
                cut = read(fd, &one, 1) > 0;
                break;
            }
            size_t grown = cap ? cap * 2 : 8192;
            char *b = realloc(buf, grown + sizeof CMDLINE_CUT);
            if (!b) {
                n = 0;
                break;
            }
            buf = b;
            cap = grown;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (cut) /* keep the arguments read whole */
        while (n > 0 && buf[n - 1] != 0)
            n--;
    if (n == 0) {
        free(buf);
        return NULL;
    }
    if (cut) {
        memcpy(buf + n, CMDLINE_CUT, sizeof CMDLINE_CUT);
        n += sizeof CMDLINE_CUT;
    } else if (buf[n - 1] != 0) {
        buf[n++] = 0;
    }
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += buf[i] == 0;
    char **v = calloc((size_t)c + 1, sizeof *v);
    if (!v) {
        free(buf);
        return NULL;
    }
    for (size_t i = 0, off = 0; i < (size_t)c; i++) {
        v[i] = buf + off;
        off += strlen(buf + off) + 1;
    }
    *argc = c;
    return v;
}

/* The name for -c code: what multiprocessing started, or "command". */
static const char *code_name(const char *code) {
    return strstr(code, "forkserver")         ? "forkserver"
           : strstr(code, "resource_tracker") ? "resource-tracker"
           : strstr(code, "multiprocessing")  ? "spawn"
                                              : "command";
}

/*
 * The parent of pid as this launcher numbers it, when pid runs in a pid
 * namespace of its own (unshare --pid, a sandbox): there the pid it sent
 * (getpid before fork, getppid) is the namespace's, 1 or 0 for its first
 * process. /proc/<pid>/status: NSpid lists more than one number, PPid is
 * ours. 0 when pid is in our namespace or /proc cannot say.
 */
static pid_t outer_parent(pid_t pid) {
    char buf[4096];
    if (read_proc(pid, "status", buf, sizeof buf) <= 0)
        return 0;
    const char *ns = strstr(buf, "\nNSpid:"), *pp = strstr(buf, "\nPPid:");
    if (!ns || !pp)
        return 0;
    ns += 7;
    int fields = 0;
    for (const char *q = ns; *q && *q != '\n'; q++)
        if ((*q >= '0' && *q <= '9') && (q == ns || q[-1] == ' ' || q[-1] == '\t'))
            fields++;
    return fields > 1 ? (pid_t)strtol(pp + 6, NULL, 10) : 0;
}

/* A short name for the folder: what multiprocessing started, the script,
 * or the program. The interpreter's options are read as Python reads them:
 * a cluster of flags (-uB), -c and -m ending the options with their
 * argument attached (-mjson.tool) or next, -X and -W taking one, attached
 * or next (-X importtime is no script). Only [A-Za-z0-9._-] kept. */
static void short_name(const child_t *c, char *out, size_t len) {
    const char *name = c->kind == FIL_CHILD_FORK ? "fork" : "python";
    for (int i = 1, done = c->kind == FIL_CHILD_FORK; !done && i < c->argc; i++) {
        const char *a = c->argv[i];
        if (a[0] != '-' || !a[1]) {
            if (a[0] != '-')
                name = strrchr(a, '/') ? strrchr(a, '/') + 1 : a;
            break; /* the script, or "-": the program comes from stdin */
        }
        if (a[1] == '-') { /* a long option; --check-hash-based-pycs takes a word */
            if (!strcmp(a, "--") && i + 1 < c->argc) {
                a = c->argv[i + 1]; /* the script, even if it starts with '-' */
                name = strrchr(a, '/') ? strrchr(a, '/') + 1 : a;
                break;
            }
            if (!strcmp(a, "--check-hash-based-pycs"))
                i++;
            continue;
        }
        for (const char *f = a + 1; *f; f++) {
            const char *arg = f[1] ? f + 1 : i + 1 < c->argc ? c->argv[i + 1] : NULL;
            if (*f == 'c' || *f == 'm') {
                if (arg)
                    name = *f == 'c' ? code_name(arg) : arg;
                done = 1;
                break;
            }
            if (*f == 'X' || *f == 'W') {
                if (!f[1])
                    i++; /* its argument is the next word */
                break;
            }
        }
    }
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < len && k < 40; p++)
        out[k++] = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                           (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'
                       ? *p
                       : '_';
    out[k] = 0;
}

/*
 * Can c be told its folder (fil_child_reply_t's dir and display)? A child
 * that cannot runs unprofiled and is not listed, and the first one says
 * why, rather than being listed with reports nobody wrote. reg_lock held.
 */
static int fits_reply(const child_t *c) {
    static int warned;
    if (strlen(c->dir) < FIL_CHILD_DIR_MAX &&
        strlen(cfg.shown) + 1 + strlen(c->folder) < FIL_CHILD_DIR_MAX)
        return 1;
    if (!warned)
        fprintf(stderr, FIL_MSG_PREFIX "warning: child processes are not profiled (the first: "
                        "pid %d): the path of a report folder would be longer than %d bytes "
                        "(choose a shorter -o)\n", (int)c->pid, FIL_CHILD_DIR_MAX - 1);
    warned = 1;
    errno = ENAMETOOLONG;
    return 0;
}

/* Make c's folder: children/<pid>-<name>[-N]. 0, or -1. */
static int make_folder(child_t *c) {
    char base[PATH_MAX], name[64];
    snprintf(base, sizeof base, "%s/children", cfg.absdir);
    if (mkdir(base, 0755) != 0 && errno != EEXIST)
        return -1;
    short_name(c, name, sizeof name);
    for (int k = 1; k < 100; k++) {
        if (k == 1)
            snprintf(c->folder, sizeof c->folder, "children/%d-%s", (int)c->pid, name);
        else
            snprintf(c->folder, sizeof c->folder, "children/%d-%s-%d", (int)c->pid, name, k);
        if ((size_t)snprintf(c->dir, sizeof c->dir, "%s/%s", cfg.absdir, c->folder) >=
                sizeof c->dir ||
            !fits_reply(c))
            return -1;
        if (mkdir(c->dir, 0755) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

/*
 * c's memory cgroup and its OOM-kill counts (with its v1 subtree's:
 * fil_cli_oom_tree_read), and those of the cgroup it registered in, as they
 * are while it is alive: a kill counted before a look that finds it alive
 * and not dying is another process's (a sibling the OOM killer chose, the
 * child then killed by its parent with SIGKILL). A look at a dying child
 * is not taken (fil_cli_proc_dying, read after the counts): on cgroup v1
 * an exiting task shows in the root cgroup, which is no move, and the
 * counts may already hold its own kill. Such a look replaced the cgroup
 * the child had been seen in, and its baseline, with the root's; the
 * child's kill was then found only through the cgroup it registered in.
 *
 * The kernel counts a kill before it sends the SIGKILL, and the victim
 * shows neither a pending SIGKILL nor an exit between taking the signal
 * and starting to exit. A stall of the victim in either window (a
 * preempted virtual CPU) lets a look take it for alive with its own kill
 * counted, and its death would be called a plain SIGKILL. So the kills
 * are counted from the look before the latest (look[0]): a look becomes
 * the baseline only once a later one has seen the child alive again.
 */
static void watch_cgroup(child_t *c) {
    char dir[PATH_MAX];
    uint64_t n;
    fil_cli_oom_tree_t now, now0;
    if (fil_cli_oom_kills_of(c->pid, dir, sizeof dir, &n) != 0 ||
        fil_cli_oom_tree_read(dir, &now) != 0)
        return;
    int first = !c->cg_known, in0 = first || !strcmp(dir, c->cg0);
    int read0 = !in0 && fil_cli_oom_tree_read(c->cg0, &now0) == 0;
    if (fil_cli_proc_dying("", c->pid))
        return;
    if (first)
        snprintf(c->cg0, sizeof c->cg0, "%s", dir);
    cg_look_t *l = &c->look[1];
    if (!first)
        c->look[0] = *l;
    snprintf(l->cg, sizeof l->cg, "%s", dir);
    l->then = now;
    if (in0 || read0)
        l->cg0_then = in0 ? now : now0;
    if (first)
        c->look[0] = *l;
    c->cg_known = 1;
}

/* Did an OOM kill happen in c's memory cgroup since look l? Both its first
 * cgroup (with its subtree) and the one l saw it in are asked: a process
 * that moves itself into a child cgroup can be killed there before the
 * next look, and then seen in it still dying, with the kill already
 * counted in that cgroup's baseline. Each cgroup's count is compared with
 * its own (fil_cli_oom_tree_rose). */
static int rose_since(const child_t *c, const cg_look_t *l) {
    fil_cli_oom_tree_t now;
    if (fil_cli_oom_tree_read(l->cg, &now) == 0 && fil_cli_oom_tree_rose(&l->then, &now))
        return 1;
    return strcmp(c->cg0, l->cg) && fil_cli_oom_tree_read(c->cg0, &now) == 0 &&
           fil_cli_oom_tree_rose(&l->cg0_then, &now);
}

/* Did an OOM kill happen in c's memory cgroup since the look before the
 * latest (or in the cgroup the latest saw it in, since then)? reg_lock
 * held. */
static int oom_kill_rose(const child_t *c) {
    if (!c->cg_known)
        return 0;
    return rose_since(c, &c->look[0]) ||
           (strcmp(c->look[0].cg, c->look[1].cg) && rose_since(c, &c->look[1]));
}

/* ---- registration ------------------------------------------------------ */

/* Receive a hello and its descriptor. 0, or -1. */
static int recv_hello(int s, fil_child_hello_t *h, int *fd) {
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {h, sizeof *h};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    *fd = -1;
    ssize_t r = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(c), sizeof *fd);
    if (r != (ssize_t)sizeof *h || h->magic != FIL_CHILD_MAGIC) {
        if (*fd >= 0)
            close(*fd);
        return -1;
    }
    return 0;
}

/* The entry of a listed live pid, or NULL. reg_lock held. */
static child_t *live_entry(pid_t pid) {
    for (uint32_t i = nchildren; i-- > 0;)
        if (children[i]->pid == pid && children[i]->phase == LIVE)
            return children[i];
    return NULL;
}

static void finish(child_t *c);

/* A new entry for pid (reg_lock held): NULL if out of memory. */
static child_t *new_entry(void) {
    if (nchildren == cap_children) {
        uint32_t ncap = cap_children ? cap_children * 2 : 16;
        child_t **n = realloc(children, ncap * sizeof *n);
        if (!n)
            return NULL;
        /* realloc leaves the new slots as they were: a spare is one that is not NULL */
        memset(n + cap_children, 0, (ncap - cap_children) * sizeof *n);
        children = n;
        cap_children = ncap;
    }
    if (!children[nchildren] && !(children[nchildren] = malloc(sizeof(child_t))))
        return NULL;
    child_t *c = children[nchildren]; /* a failed registration's entry is used again */
    memset(c, 0, sizeof *c);
    c->memfd = c->pidfd = c->keep_fd = -1;
    return c;
}

/* Say once that children run unprofiled for want of a descriptor (three
 * for each live child: its state, a pidfd, its connection). */
static void out_of_fds(void) {
    static int warned;
    struct rlimit rl;
    if (warned || getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    warned = 1;
    fprintf(stderr, FIL_MSG_PREFIX "warning: some child processes are not profiled: the "
                    "launcher ran out of file descriptors (ulimit -n %llu: it needs three for "
                    "each live child process)\n", (unsigned long long)rl.rlim_cur);
}

/* Register the process behind connection s (its hello h, its memfd).
 * 0 with the reply sent, or -1. */
static int take_child(int s, pid_t pid, const fil_child_hello_t *h, int memfd) {
    fil_child_reply_t r;
    memset(&r, 0, sizeof r);
    r.magic = FIL_CHILD_MAGIC;
    pthread_mutex_lock(&reg_lock);
    child_t *old = live_entry(pid);
    if (old) { /* it replaced its image with exec */
        old->phase = ENDED;
        old->end_mono = 0;
        finish(old);
    }
    child_t *c = new_entry();
    int ok = c != NULL;
    if (ok) {
        c->pid = pid;
        pid_t outer = outer_parent(pid);
        c->parent = outer > 0 ? outer : h->parent;
        c->kind = h->kind;
        c->memfd = memfd;
        c->argv = read_cmdline(pid, &c->argc);
        c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (c->pidfd < 0 && (errno == EMFILE || errno == ENFILE))
            out_of_fds();
        ok = c->pidfd >= 0 && make_folder(c) == 0;
        void *hm = mmap(NULL, FIL_STATE_HEADER_SIZE, PROT_READ, MAP_SHARED, memfd, 0);
        c->h = hm == MAP_FAILED ? NULL : hm;
        ok = ok && c->h;
        if (!ok)
            free(c->argv ? c->argv[0] : NULL), free(c->argv), c->argv = NULL;
    }
    if (ok) {
        watch_cgroup(c);
        nchildren++;
        r.ok = 1;
        r.launcher = (int32_t)getpid();
        r.fd = memfd;
        if ((size_t)snprintf(r.dir, sizeof r.dir, "%s", c->dir) >= sizeof r.dir ||
            (size_t)snprintf(r.display, sizeof r.display, "%s/%s", cfg.shown, c->folder) >=
                sizeof r.display)
            r.ok = 0; /* a folder too deep for the child to be told: not profiled */
    } else if (c) {
        if (c->pidfd >= 0)
            close(c->pidfd);
        if (c->h)
            munmap((void *)c->h, FIL_STATE_HEADER_SIZE);
    }
    pthread_mutex_unlock(&reg_lock);
    if (send(s, &r, sizeof r, MSG_NOSIGNAL) != (ssize_t)sizeof r)
        ok = 0;
    if (!ok && memfd >= 0 && !r.ok)
        close(memfd);
    return ok ? 0 : -1;
}

/* A new connection: its hello, and the child it registers. */
static void accept_one(void) {
    int s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    struct ucred cr;
    socklen_t len = sizeof cr;
    fil_child_hello_t h;
    int fd;
    if (s < 0) {
        if (errno == EMFILE || errno == ENFILE)
            out_of_fds();
        return;
    }
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != getuid() ||
        recv_hello(s, &h, &fd) != 0 || nconns >= MAX_CONNS) {
        close(s);
        return;
    }
    if (h.type == FIL_CHILD_MSG_STATE && fd < 0)
        out_of_fds(); /* its state could not be taken in (MSG_CTRUNC) */
    /* After the program's end a hello is still taken until the grace is
     * over: a child started just before the end (its hello was queued when
     * the stop byte came, in the same poll) is listed and reported as it
     * is then, not run unseen. */
    pthread_mutex_lock(&reg_lock);
    int too_late = stopping && mono_ns() > deadline_mono;
    pthread_mutex_unlock(&reg_lock);
    if (h.type == FIL_CHILD_MSG_STATE &&
        (fd < 0 || too_late || take_child(s, cr.pid, &h, fd) != 0)) {
        close(s);
        return;
    }
    if (h.type != FIL_CHILD_MSG_STATE && fd >= 0)
        close(fd);
    conns[nconns++] = s;
}

/* A note on connection k: a reaping. Returns 0, or -1 when it closed. */
static int read_note(int k) {
    fil_child_reaped_t n;
    ssize_t r = recv(conns[k], &n, sizeof n, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close(conns[k]);
        conns[k] = conns[--nconns];
        return -1;
    }
    if (r != (ssize_t)sizeof n || n.magic != FIL_CHILD_MAGIC || n.type != FIL_CHILD_MSG_REAPED)
        return 0;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t i = nchildren; i-- > 0;)
        if (children[i]->pid == n.pid && children[i]->phase != DONE && !children[i]->noted) {
            children[i]->noted = 1;
            children[i]->wstatus = n.wstatus;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

/* ---- how a child ended, and its reports -------------------------------- */

/* Fill c->row with how it ended, as far as it is known. reg_lock held. */
static void settle_status(child_t *c) {
    fil_child_row_t *w = &c->row;
    w->exit_known = 1;
    if (c->h->exited) {
        w->exit_status = c->h->exit_code;
    } else if (c->noted && WIFSIGNALED(c->wstatus)) {
        w->term_signal = WTERMSIG(c->wstatus);
        w->exit_status = 128 + w->term_signal;
    } else if (c->noted) {
        w->exit_status = WEXITSTATUS(c->wstatus);
    } else {
        w->exit_known = 0;
    }
    if (!c->h->exited && (!w->exit_known || w->term_signal == SIGKILL) && oom_kill_rose(c)) {
        w->oom_killed = 1;
        if (!w->exit_known) {
            w->exit_known = 1;
            w->term_signal = SIGKILL;
            w->exit_status = 128 + SIGKILL;
        }
    }
    int dumped_oom = c->h->oom.dump_state == 2 && c->h->oom.reason != FIL_REASON_SIGNAL;
    w->out_of_memory = dumped_oom || w->oom_killed;
}

/* The run info of child c's own reports. */
static void child_info(const child_t *c, fil_run_info_t *in) {
    memset(in, 0, sizeof *in);
    in->argc = c->argc;
    in->argv = c->argv;
    in->python = cfg.python;
    in->start_ns = c->h->start_ns;
    in->end_ns = real_ns();
    /* its own VmHWM, recorded at its exit (the launcher samples no child's
     * RSS): 0, null, when it died of a signal or still runs */
    in->peak_rss = c->row.running ? 0 : __atomic_load_n(&c->h->exit_peak_rss, __ATOMIC_ACQUIRE);
    in->exit_status = c->row.exit_known ? c->row.exit_status : -1; /* -1: null, not known */
    in->term_signal = c->row.term_signal;
    in->oom_kill_known = c->cg_known;
    in->oom_kills_before = c->look[0].then.e[0].count;
    in->oom_kills_after = c->look[0].then.e[0].count + (uint64_t)c->row.oom_killed;
    in->options = cfg.options;
    in->children_profiled = 1;
    in->child_index = 1;
    if (c->row.running) { /* a report of this moment (fil_render_on_demand), not of an exit */
        in->now_ns = in->end_ns;
        in->sequence = 1;
    }
}

/* Render c's reports (the render reads only c's own state; its entry does
 * not change while it is RENDERING). */
static void render_child(child_t *c) {
    fil_run_info_t in;
    char err[256] = "";
    child_info(c, &in);
    int r = c->row.running ? fil_render_on_demand(c->memfd, c->dir, &in, err, sizeof err)
                           : fil_render_reports(c->memfd, c->dir, &in, err, sizeof err);
    if (r < 0)
        fprintf(stderr, FIL_MSG_PREFIX "warning: the report of child process %d could not be "
                        "written: %s\n", (int)c->pid, err[0] ? err : "unknown error");
}

/* What a fork child may allocate between fork and an exec of another
 * program and still count as only preparing that exec: Python's after-fork
 * hooks and the exec's arguments take a few KiB (pty.fork and pexpect, a
 * daemon that forks and execs). */
#define EXEC_PREP_BYTES (64 * 1024)

/* Is c a registration that never ran: it replaced its image at once
 * (replaced: by a Python that registered again), or a fork child that
 * became another program (sh, env, gzip: it exec'd, never exited as
 * Python and was not killed, or still runs) having allocated nothing but
 * what preparing that exec takes? Its status is settled if it ended. */
static int never_ran(const child_t *c, int replaced) {
    if (replaced)
        return c->h->allocations == 0 && c->h->peak_total == 0 && !c->h->exited;
    if (!c->h->execed || c->h->exited || c->h->peak_total > EXEC_PREP_BYTES ||
        c->h->total > EXEC_PREP_BYTES)
        return 0;
    return c->row.running ||
           (c->row.exit_known && !c->row.term_signal && !c->row.out_of_memory);
}

/* c's own moment copy is kept; its state goes. reg_lock held. */
static void close_child(child_t *c) {
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->map)
        munmap((void *)c->map, c->map_size);
    munmap((void *)c->h, FIL_STATE_HEADER_SIZE);
    if (c->copy[0].n || c->copy[1].n)
        c->keep_fd = c->memfd; /* a moment of the tree draws its frames */
    else
        close(c->memfd);
    c->pidfd = c->memfd = -1;
    c->map = NULL;
    c->h = NULL;
    c->phase = DONE;
}

/* The queue of children whose reports are to be rendered, and the
 * renderers (one per CPU, at most MAX_RENDERERS): a child's render reads
 * only its own state and folder, so they run side by side, and without
 * reg_lock (the sampler and registrations go on). Guarded by reg_lock. */
#define MAX_RENDERERS 4
static child_t **queue;
static uint32_t qhead, qtail, qcap;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static pthread_t renderers[MAX_RENDERERS];
static int nrenderers, renderers_quit;

/* Append c to the queue. reg_lock held. 0, or -1 (out of memory). */
static int enqueue(child_t *c) {
    if (qtail == qcap) {
        uint32_t ncap = qcap ? qcap * 2 : 64;
        child_t **n = realloc(queue, ncap * sizeof *n);
        if (!n)
            return -1;
        queue = n;
        qcap = ncap;
    }
    queue[qtail++] = c;
    pthread_cond_signal(&queue_cond);
    return 0;
}

/* A renderer keeps its working memory from one child to the next while
 * children wait (a Pool's workers end together), and gives it back when
 * none does. */
static void *renderer(void *arg) {
    (void)arg;
    fil_render_keep_scratch(1);
    pthread_mutex_lock(&reg_lock);
    for (;;) {
        while (qhead == qtail && !renderers_quit)
            pthread_cond_wait(&queue_cond, &reg_lock);
        if (qhead == qtail)
            break;
        child_t *c = queue[qhead++];
        pthread_mutex_unlock(&reg_lock);
        render_child(c);
        pthread_mutex_lock(&reg_lock);
        close_child(c);
        if (qhead == qtail) { /* none waits */
            pthread_mutex_unlock(&reg_lock);
            fil_render_keep_scratch(0);
            fil_render_keep_scratch(1);
            pthread_mutex_lock(&reg_lock);
        }
    }
    pthread_mutex_unlock(&reg_lock);
    fil_render_keep_scratch(0);
    return NULL;
}

/* c has ended: settle how, fill its row, queue its render (rendered here
 * when no renderer runs). reg_lock held. */
static void finish(child_t *c) {
    int replaced = c->end_mono == 0 && !c->row.running;
    if (!c->row.running && !replaced)
        settle_status(c);
    if (never_ran(c, replaced)) { /* nothing to show */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", c->dir);
        rmdir(path);
        close_child(c);
        c->folder[0] = 0;
        return;
    }
    c->row.execed = replaced;
    c->row.pid = (int)c->pid;
    c->row.parent = (int)c->parent;
    c->row.kind = c->kind == FIL_CHILD_FORK ? "fork" : "exec";
    c->row.argc = c->argc;
    c->row.argv = c->argv;
    c->row.folder = c->folder;
    int64_t pk = c->h->peak_total > c->h->total ? c->h->peak_total : c->h->total;
    c->row.peak_bytes = pk > 0 ? (uint64_t)pk : 0;
    c->phase = RENDERING;
    if (nrenderers && enqueue(c) == 0)
        return;
    render_child(c);
    close_child(c);
}

/* ---- moments of the tree ------------------------------------------------ */

/* Keep the whole file of a state mapped read-only (remapped as it grows).
 * 0, or -1. */
static int map_whole(int fd, const fil_state_header_t *h, const char **map, size_t *size) {
    size_t want = (size_t)__atomic_load_n(&h->file_size, __ATOMIC_ACQUIRE);
    if (*map && want <= *size)
        return 0;
    void *m = mmap(NULL, want, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return -1;
    if (*map)
        munmap((void *)*map, *size);
    *map = m;
    *size = want;
    return 0;
}

/* Copy the per-node bytes of a live state into p, one aligned load each. */
static void copy_bytes(const fil_state_header_t *h, const char *map, size_t size, proc_copy_t *p) {
    uint64_t n = __atomic_load_n(&h->nodes.count, __ATOMIC_ACQUIRE);
    p->held = 0;
    p->n = 0;
    if (n > p->cap) {
        int64_t *b = realloc(p->bytes, n * sizeof *b);
        if (!b)
            return;
        p->bytes = b;
        p->cap = n;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t k;
        uint64_t w;
        fil_seg_locate(i, &k, &w);
        uint64_t off = h->bytes.chunk_off[k] + w * 8;
        if (k >= h->bytes.nchunks || off + 8 > size)
            break;
        int64_t v = __atomic_load_n((const int64_t *)(const void *)(map + off), __ATOMIC_RELAXED);
        p->bytes[i] = v;
        p->held += v > 0 ? (uint64_t)v : 0;
        p->n = i + 1;
    }
}

/* Take moment m now (reg_lock held): the main program (if it runs) and
 * every live child, and dead, the child index `dead` (FIL_NONE: none). */
static void take_moment(int which, uint64_t t_ns, uint32_t dead) {
    moment_t *m = &moments[which];
    m->taken = 1;
    m->t_ns = t_ns;
    m->total = 0;
    m->nprocs = 0;
    free(m->pids);
    free(m->held);
    free(m->who);
    m->pids = calloc(nchildren + 1, sizeof *m->pids);
    m->held = calloc(nchildren + 1, sizeof *m->held);
    m->who = calloc(nchildren + 1, sizeof *m->who);
    if (!m->pids || !m->held || !m->who) {
        m->taken = 0;
        return;
    }
    if (main_h && map_whole(cfg.state_fd, main_h, &main_map, &main_map_size) == 0) {
        copy_bytes(main_h, main_map, main_map_size, &m->main);
        m->pids[0] = cfg.main_pid;
        m->held[0] = m->main.held;
        m->who[0] = FIL_NONE;
        m->total += m->main.held;
        m->nprocs = 1;
    }
    for (uint32_t i = 0; i < nchildren; i++) {
        child_t *c = children[i];
        if ((c->phase != LIVE && i != dead) || !c->h ||
            map_whole(c->memfd, c->h, &c->map, &c->map_size) != 0)
            continue;
        copy_bytes(c->h, c->map, c->map_size, &c->copy[which]);
        m->pids[m->nprocs] = (int)c->pid;
        m->held[m->nprocs] = c->copy[which].held;
        m->who[m->nprocs++] = i;
        m->total += c->copy[which].held;
    }
}

/* The totals said sum, more than the tree's peak so far: copy the moment
 * (a try) and keep it as the peak if it holds more than the peak's copy.
 * The copy is what a moment shows, and it can hold less than the totals
 * said: bytes freed between the two reads (the program releases its
 * memory just as a total rose by a few bytes), a state that grew a chunk
 * after it was mapped. Such a copy does not replace a fuller one; while
 * the peak's copy holds less than the totals, the next sample at this
 * height tries again. reg_lock held. */
static void try_peak(uint64_t t_ns, uint64_t sum) {
    take_moment(2, t_ns, FIL_NONE);
    if (moments[2].taken && (!moments[0].taken || moments[2].total > moments[0].total)) {
        moment_t m = moments[0];
        moments[0] = moments[2];
        moments[2] = m;
        for (uint32_t i = 0; i < nchildren; i++) {
            proc_copy_t p = children[i]->copy[0];
            children[i]->copy[0] = children[i]->copy[2];
            children[i]->copy[2] = p;
        }
    }
    uint64_t got = moments[0].taken ? moments[0].total : 0;
    tree_max = got < sum ? got : sum;
}

/* The sampler's part (sample.c): see the file comment. */
void fil_cli_children_sample(const fil_state_header_t *h, uint64_t t_ns) {
    if (!started)
        return;
    pthread_mutex_lock(&reg_lock);
    main_h = h;
    int64_t sum = h ? __atomic_load_n(&h->total, __ATOMIC_ACQUIRE) : 0;
    int dumping = h && h->oom.dump_state != 0 && h->oom.reason != FIL_REASON_SIGNAL;
    for (uint32_t i = 0; i < nchildren; i++) {
        const child_t *c = children[i];
        if (c->phase != LIVE || !c->h)
            continue;
        sum += __atomic_load_n(&c->h->total, __ATOMIC_ACQUIRE);
        dumping |= c->h->oom.dump_state != 0 && c->h->oom.reason != FIL_REASON_SIGNAL;
    }
    if (nchildren && sum > 0 && (uint64_t)sum > tree_max)
        try_peak(t_ns, (uint64_t)sum);
    if (dumping && !moments[1].taken)
        take_moment(1, t_ns, FIL_NONE);
    pthread_mutex_unlock(&reg_lock);
}

/* ---- the thread ---------------------------------------------------------- */

/* A pidfd said child i ended (reg_lock held). If it was killed by the OOM
 * killer, or dumped out of memory so fast that no sample saw it dumping,
 * and no process ran out of memory before, the tree's out-of-memory moment
 * is now, with its bytes as they were when it died. */
static void ended(uint32_t i) {
    child_t *c = children[i];
    c->phase = ENDED;
    c->end_mono = mono_ns();
    close(c->pidfd);
    c->pidfd = -1;
    int dumped = c->h->oom.dump_state != 0 && c->h->oom.reason != FIL_REASON_SIGNAL;
    if (!moments[1].taken && (dumped || (!c->h->exited && oom_kill_rose(c))))
        take_moment(1, real_ns() - cfg.info->start_ns, i);
}

/* Finish every ended child whose end is settled. reg_lock held. */
static void settle_ended(uint64_t now, int force) {
    for (uint32_t i = 0; i < nchildren; i++) {
        child_t *c = children[i];
        if (c->phase == ENDED &&
            (force || c->h->exited || c->noted || now > c->end_mono + NOTE_WAIT_NS))
            finish(c);
    }
}

/* Is any child still live, or ended without its report queued? reg_lock
 * held. One being rendered is the renderers' (it kept the program's own
 * report waiting for every child's render: a Pool's eight workers end
 * together at the end of the run). */
static int any_live(void) {
    for (uint32_t i = 0; i < nchildren; i++)
        if (children[i]->phase == LIVE || children[i]->phase == ENDED)
            return 1;
    return 0;
}

/* One round: poll, accept, notes, ends. Returns 1 to stop. */
static int round_once(uint64_t *last_cg) {
    /* Sized by what is open (only this thread adds connections and
     * children): a round every 20 ms used to clear room for MAX_CONNS. */
    uint32_t cap = 2 + (uint32_t)nconns + nchildren, np = 0;
    struct pollfd *p = calloc(cap, sizeof *p);
    uint32_t *idx = calloc(cap, sizeof *idx);
    int done = 0;
    if (!p || !idx) {
        free(p);
        free(idx);
        return 1;
    }
    p[np++] = (struct pollfd){stop_pipe[0], POLLIN, 0};
    p[np++] = (struct pollfd){listen_fd, POLLIN, 0};
    for (int k = 0; k < nconns; k++)
        p[np++] = (struct pollfd){conns[k], POLLIN, 0};
    uint32_t first_child = np;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t i = 0; i < nchildren; i++)
        if (children[i]->phase == LIVE) {
            idx[np] = i;
            p[np++] = (struct pollfd){children[i]->pidfd, POLLIN, 0};
        }
    pthread_mutex_unlock(&reg_lock);
    poll(p, np, 20);
    if (p[0].revents & POLLIN) { /* the stop byte, read once: it must not wake every round */
        char b;
        if (read(stop_pipe[0], &b, 1) != 1) {
        }
    }
    if (p[1].revents & POLLIN)
        accept_one();
    for (int k = (int)first_child - 1; k >= 2; k--)
        if (p[k].revents)
            read_note(k - 2);
    uint64_t now = mono_ns();
    pthread_mutex_lock(&reg_lock);
    for (uint32_t j = first_child; j < np; j++)
        if ((p[j].revents & POLLIN) && children[idx[j]]->phase == LIVE)
            ended(idx[j]);
    if (now - *last_cg > cgroup_every_ns) {
        *last_cg = now;
        for (uint32_t i = 0; i < nchildren; i++)
            if (children[i]->phase == LIVE)
                watch_cgroup(children[i]);
    }
    settle_ended(now, 0);
    done = stopping && (!any_live() || now > deadline_mono);
    pthread_mutex_unlock(&reg_lock);
    free(p);
    free(idx);
    return done;
}

static void *run(void *arg) {
    (void)arg;
    uint64_t last_cg = 0;
    while (!round_once(&last_cg)) {
    }
    /* The program has ended and the grace is over: what still runs is
     * reported as it is now. */
    pthread_mutex_lock(&reg_lock);
    settle_ended(mono_ns(), 1);
    for (uint32_t i = 0; i < nchildren; i++)
        if (children[i]->phase == LIVE) {
            children[i]->row.running = 1;
            finish(children[i]);
        }
    pthread_mutex_unlock(&reg_lock);
    return NULL;
}

/*
 * fil_cli_children_start - listen for the processes the program starts.
 * The socket's name into name (FIL_CHILDREN_NAME_MAX + 1 bytes). 0, or -1
 * with the error printed (the run goes on without children).
 * Context: supervisor, before the program starts.
 */
int fil_cli_children_start(const fil_cli_children_cfg_t *c, char *name) {
    struct sockaddr_un a;
    unsigned rnd = 0;
    cfg = *c;
    /* For tests: look at the children's cgroups every N ms instead (a large
     * N: only when each registers, as if every move came right before its
     * process died). */
    const char *look = getenv("FIL_TEST_CGROUP_LOOK_MS");
    if (look && *look)
        cgroup_every_ns = strtoull(look, NULL, 10) * 1000000u;
    if (syscall(SYS_getrandom, &rnd, sizeof rnd, 0) != (long)sizeof rnd)
        rnd = (unsigned)real_ns();
    snprintf(name, FIL_CHILDREN_NAME_MAX + 1, "fil-profile-%d-%08x", (int)getpid(), rnd);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, name, strlen(name));
    listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))) != 0 ||
        listen(listen_fd, 128) != 0 || pipe2(stop_pipe, O_CLOEXEC) != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "warning: child processes will not be profiled: %s\n",
                strerror(errno));
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&thread, NULL, run, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "warning: child processes will not be profiled: %s\n",
                strerror(r));
        return -1;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cpus < 1 ? 1 : cpus > MAX_RENDERERS ? MAX_RENDERERS : (int)cpus;
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int k = 0; k < want; k++)
        if (pthread_create(&renderers[nrenderers], NULL, renderer, NULL) == 0)
            nrenderers++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    started = 1;
    return 0;
}

void fil_cli_children_main_pid(pid_t pid) { cfg.main_pid = (int)pid; }

/*
 * fil_cli_children_stop - the program has ended: wait up to grace_ms for
 * the children still running, queue each one's reports, stop the thread
 * (the renderers go on: fil_cli_children_wait_reports). The main
 * program's own out-of-memory death (oom_killed) is a moment of the tree.
 * Context: supervisor's main thread, after the reap.
 */
void fil_cli_children_stop(unsigned grace_ms, int main_oom) {
    if (!started)
        return;
    pthread_mutex_lock(&reg_lock);
    if (main_oom && !moments[1].taken && nchildren)
        take_moment(1, real_ns() - cfg.info->start_ns, FIL_NONE);
    main_h = NULL; /* its state is complete; the moments copied what they need */
    deadline_mono = mono_ns() + (uint64_t)grace_ms * 1000000u;
    stopping = 1;
    pthread_mutex_unlock(&reg_lock);
    char b = 1;
    if (write(stop_pipe[1], &b, 1) != 1) {
    }
    pthread_join(thread, NULL);
    pthread_mutex_lock(&reg_lock);
    renderers_quit = 1; /* they end once the queue is empty */
    pthread_cond_broadcast(&queue_cond);
    pthread_mutex_unlock(&reg_lock);
    started = 0;
    close(listen_fd);
    for (int k = 0; k < nconns; k++)
        close(conns[k]);
    nconns = 0;
}

/*
 * fil_cli_children_wait_reports - wait until every child's reports are
 * written (the renderers go on after fil_cli_children_stop, beside the
 * main program's own render). Any thread, any number of times.
 */
void fil_cli_children_wait_reports(void) {
    static pthread_mutex_t join_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&join_lock);
    for (int k = 0; k < nrenderers; k++)
        pthread_join(renderers[k], NULL);
    nrenderers = 0;
    pthread_mutex_unlock(&join_lock);
}

/* The rows of the children listed (those with a folder), in order: final
 * once fil_cli_children_stop returned (their reports may still be drawn). */
uint32_t fil_cli_children_rows(fil_child_row_t *out, uint32_t max) {
    uint32_t n = 0;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t i = 0; i < nchildren && n < max; i++)
        if (children[i]->folder[0])
            out[n++] = children[i]->row;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

uint32_t fil_cli_children_count(void) { return nchildren; }

/* Label "[pid N: <command>]" of process pid into buf (a bracketed frame:
 * never read as a Python frame). The program's says "(the program)". */
static void proc_label(uint32_t who, int pid, char *buf, size_t len) {
    int argc = who == FIL_NONE ? cfg.info->argc : children[who]->argc;
    char *const *argv = who == FIL_NONE ? cfg.info->argv : children[who]->argv;
    size_t k = (size_t)snprintf(buf, len, "[pid %d:", pid);
    for (int i = who == FIL_NONE && argc > 0 && !strcmp(argv[0], "run") ? 1 : 0;
         i < argc && k + 2 < len && k < 200; i++)
        k += (size_t)snprintf(buf + k, len - k, " %.80s", argv[i]);
    if (k + 20 < len)
        snprintf(buf + k, len - k, "%s]", who == FIL_NONE ? " (the program)" : "");
    else if (len > 2)
        memcpy(buf + len - 2, "]", 2);
}

/*
 * fil_cli_children_moments - the tree's moments for the main summary and
 * index.html (at most 2 into out). Their graphs are drawn by
 * fil_cli_children_draw_moments. Context: main thread, after
 * fil_cli_children_stop.
 */
uint32_t fil_cli_children_moments(fil_tree_moment_t *out) {
    static const char *const what[2] = {"peak", "oom"};
    static const char *const heads[2] = {"The process tree at its peak",
                                         "The process tree when memory ran out"};
    uint32_t n = 0;
    for (int k = 0; k < 2; k++) {
        const moment_t *m = &moments[k];
        if (!m->taken || m->nprocs == 0)
            continue;
        fil_tree_moment_t o = {what[k], heads[k], m->t_ns, m->total, m->nprocs, m->pids, m->held};
        out[n++] = o;
    }
    return n;
}

/* A descriptor of c's state of its own (the caller closes it), or -1: the
 * one c keeps once its reports are written, or the one its renderer reads
 * while they are (never closed under us: a child with a moment's copy
 * keeps it, close_child). */
static int child_state_fd(const child_t *c) {
    pthread_mutex_lock(&reg_lock);
    int fd = c->keep_fd >= 0 ? c->keep_fd : c->memfd;
    fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    pthread_mutex_unlock(&reg_lock);
    return fd;
}

/* Draw the graph of moment k (tree-<what>.svg and .prof). 0, or -1. */
static int draw_moment(int k, const char *what, const char *head, const char *subtitle) {
    const moment_t *m = &moments[k];
    fil_tree_proc_t *procs = calloc(m->nprocs, sizeof *procs);
    char(*labels)[320] = calloc(m->nprocs, sizeof *labels);
    char name[32];
    int r = -1;
    for (uint32_t i = 0; procs && labels && i < m->nprocs; i++) {
        uint32_t who = m->who[i];
        proc_label(who, m->pids[i], labels[i], sizeof labels[i]);
        procs[i].label = labels[i];
        procs[i].bytes = who == FIL_NONE ? m->main.bytes : children[who]->copy[k].bytes;
        procs[i].nbytes = who == FIL_NONE ? m->main.n : children[who]->copy[k].n;
        procs[i].state_fd = who == FIL_NONE ? cfg.state_fd : child_state_fd(children[who]);
    }
    snprintf(name, sizeof name, "tree-%s", what);
    if (procs && labels)
        r = fil_render_tree_view(procs, m->nprocs, cfg.absdir, name, head, subtitle);
    for (uint32_t i = 0; procs && i < m->nprocs; i++)
        if (m->who[i] != FIL_NONE && procs[i].state_fd >= 0)
            close(procs[i].state_fd);
    free(procs);
    free(labels);
    return r;
}

/*
 * fil_cli_children_draw_moments - draw the graphs of the moments `in`
 * (what fil_cli_children_moments gave) into the main result folder. The
 * number drawn, while the renderers may still draw the children's own
 * reports (each state is only read). Context: after
 * fil_cli_children_stop; any one thread.
 */
uint32_t fil_cli_children_draw_moments(const fil_tree_moment_t *in, uint32_t n,
                                       const char *subtitle) {
    uint32_t drawn = 0;
    for (uint32_t i = 0; i < n; i++)
        drawn += draw_moment(in[i].what[0] == 'p' ? 0 : 1, in[i].what, in[i].headline,
                             subtitle) == 0;
    return drawn;
}
