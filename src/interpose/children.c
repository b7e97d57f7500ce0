/* SPDX-License-Identifier: MIT */
/*
 * children.c - a process the program starts is profiled on a state of its own.
 *
 * A Python process started by exec (multiprocessing's spawn and
 * forkserver, subprocess running sys.executable) has no FIL_STATE_FD: its
 * constructor makes a private memfd (fil_state_open(-1)) and registers it
 * with the launcher before the interpreter starts (fil/children.h: the
 * memfd goes over the registry socket with SCM_RIGHTS, the launcher
 * answers with the child's own report folder). A fork() child that does
 * not exec (os.fork, multiprocessing's fork) must stop writing into its
 * parent's state at once: before fork returns in the child, the state is
 * copied into a new memfd mapped where the old one was (the call-stack
 * tree and names it inherited stay valid, every counter starts at zero),
 * the tracker forgets the parent's blocks (they stay in the parent's
 * report), and the new state is registered the same way. If anything of
 * that fails, the child is not tracked, as before.
 *
 * The registry connection stays open: each child this process reaps
 * (waitpid and friends, interposed here) is noted to the launcher with its
 * wait status, which is how the launcher learns of a death by a signal in
 * a process it is not the parent of. A process that exits says so itself
 * (exit status in its header: on_exit, _exit). The connection is used (a
 * note sent, a fork child closing its parent's) only while its number
 * still holds the socket it was made on: a program that closed its
 * descriptors may have a socket of its own there by now.
 *
 * Context: the constructor and the fork child run single-threaded with the
 * guard set; the wait and exit wrappers run in any thread, take no lock
 * and allocate nothing (a vfork child calls _exit too: it must not touch
 * the state, which is its parent's).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec_internal.h"
#include "fil/children.h"
#include "fil/lock.h"
#include "fil/oom.h"
#include "fil/state_writer.h"
#include "fil/sys.h"
#include "fil/tracker.h"
#include "interpose_internal.h"

/* The registry's abstract name (empty: no launcher takes children). Set
 * by the constructor, read-only afterwards. */
static char registry[FIL_CHILDREN_NAME_MAX + 1];
/* This process's connection to the registry, or -1. Written by the
 * constructor, the fork child and the first note (one thread at a time in
 * practice; a race makes a second connection, never a wrong note). */
static int conn = -1;
/* The socket conn was made on (its number may be the program's by now:
 * a program that closed its descriptors and opened others). */
static dev_t conn_dev;
static ino_t conn_ino;
static int registered;          /* 1 once this process's state is the launcher's */
static fil_child_reply_t reply; /* the launcher's answer (folder) */
static int32_t parent; /* the process that started this one, as registered */

typedef pid_t (*waitpid_fn)(pid_t, int *, int);
typedef pid_t (*wait4_fn)(pid_t, int *, int, struct rusage *);
typedef int (*waitid_fn)(idtype_t, id_t, siginfo_t *, int);
typedef void (*exit_fn)(int);
static waitpid_fn real_waitpid;
static wait4_fn real_wait4;
static waitid_fn real_waitid;
static exit_fn real_exit_, real_Exit;

static void resolve(void) {
    real_waitpid = (waitpid_fn)dlsym(RTLD_NEXT, "waitpid");
    real_wait4 = (wait4_fn)dlsym(RTLD_NEXT, "wait4");
    real_waitid = (waitid_fn)dlsym(RTLD_NEXT, "waitid");
    real_exit_ = (exit_fn)dlsym(RTLD_NEXT, "_exit");
    real_Exit = (exit_fn)dlsym(RTLD_NEXT, "_Exit");
}

void fil_children_setup(const char *name) {
    resolve();
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > FIL_CHILDREN_NAME_MAX)
        return;
    memcpy(registry, name, n + 1);
}

int fil_children_registered(void) { return registered; }

/* A new connection to the registry, high and close-on-exec; -1 if none. */
static int dial(void) {
    struct sockaddr_un a;
    size_t n = strlen(registry);
    if (!n)
        return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, registry, n);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (connect(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) != 0) {
        close(s);
        return -1;
    }
    return fil_sys_fd_high(s);
}

/* Send the hello (with fd when fd >= 0). 0, or -1. */
static int hello(int s, uint32_t type, uint32_t kind, int fd) {
    fil_child_hello_t h = {FIL_CHILD_MAGIC, type, kind, parent, 0};
    struct iovec iov = {&h, sizeof h};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t r;
    do
        r = sendmsg(s, &m, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof h ? 0 : -1;
}

/* Send the hello of this process's state (kind FIL_CHILD_EXEC or _FORK,
 * the memfd with it), started by process from. The connection, or -1 (no
 * launcher). */
static int send_state(uint32_t kind, pid_t from) {
    parent = (int32_t)from;
    int s = dial();
    if (s >= 0 && hello(s, FIL_CHILD_MSG_STATE, kind, fil_state_fd()) != 0) {
        close(s);
        s = -1;
    }
    return s;
}

/* Keep s as this process's connection. */
static void set_conn(int s) {
    struct stat st;
    conn = s;
    conn_dev = 0;
    conn_ino = 0;
    if (s >= 0 && fstat(s, &st) == 0) {
        conn_dev = st.st_dev;
        conn_ino = st.st_ino;
    }
}

/* Is conn still the socket it was made on? If the program closed it (its
 * number may now be one of the program's own descriptors), forget it
 * without closing anything: the next note dials again. Keeps errno.
 * Context: any thread, a fork child (fstat only). */
static int conn_still_ours(void) {
    struct stat st;
    int e = errno;
    if (conn >= 0 && !(conn_ino && fstat(conn, &st) == 0 && st.st_dev == conn_dev &&
                       st.st_ino == conn_ino))
        conn = -1;
    errno = e;
    return conn >= 0;
}

/*
 * Wait on connection s for the launcher's answer to a registration of
 * kind. 0 with reply filled and the state's owner set, or -1 with s
 * closed (the launcher refused, or is gone). Context: single-threaded,
 * guard set.
 */
static int take_reply(int s, uint32_t kind) {
    ssize_t r;
    do
        r = recv(s, &reply, sizeof reply, 0);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof reply || reply.magic != FIL_CHILD_MAGIC || !reply.ok) {
        close(s);
        return -1;
    }
    reply.dir[sizeof reply.dir - 1] = 0;
    reply.display[sizeof reply.display - 1] = 0;
    set_conn(s);
    registered = 1;
    fil_state_set_owner(reply.launcher, reply.fd);
    fil_state->child_kind = kind;
    fil_state->parent_pid = parent;
    return 0;
}

/* Register this process's state and wait for the answer. 0, or -1. */
static int register_state(uint32_t kind, pid_t from) {
    int s = send_state(kind, from);
    return s < 0 ? -1 : take_reply(s, kind);
}

/* An exec'd child's registration sent by fil_children_send_exec and not
 * yet answered, or -1. Constructor only. */
static int pending = -1;

int fil_children_send_exec(void) {
    pending = send_state(FIL_CHILD_EXEC, getppid());
    return pending < 0 ? -1 : 0;
}

int fil_children_await_exec(void) {
    int s = pending;
    pending = -1;
    return s < 0 ? -1 : take_reply(s, FIL_CHILD_EXEC);
}

void fil_children_cancel_exec(void) {
    if (pending >= 0)
        close(pending);
    pending = -1;
}

/* Pass the folder to the out-of-memory dump: after fil_oom_init read its
 * defaults. Context: constructor. */
void fil_children_oom_dir(void) {
    if (registered)
        fil_oom_child(reply.dir, reply.display, 0);
}

/* CLOCK_REALTIME in nanoseconds. */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void fil_children_forked(pid_t from) {
    if (conn_still_ours()) { /* the parent's connection: its notes are its own */
        close(conn);
        conn = -1;
    }
    registered = 0;
    if (!__atomic_load_n(&fil_active, __ATOMIC_ACQUIRE))
        return;
    if (!registry[0] || fil_state_fork_child() != 0 || fil_tracker_fork_child() != 0 ||
        register_state(FIL_CHILD_FORK, from) != 0) {
        __atomic_store_n(&fil_active, 0, __ATOMIC_RELEASE);
        fil_exec_stop();
        return;
    }
    fil_oom_child(reply.dir, reply.display, 1);
    fil_state->start_ns = now_ns();
    fil_state->running = FIL_RUNNING_STARTED;
}

/* Note to the launcher that this process reaped pid with wait status st.
 * Keeps errno. Context: any thread, after a wait call returned. */
static void note_reaped(pid_t pid, int st) {
    if (!registry[0] || !(WIFEXITED(st) || WIFSIGNALED(st)))
        return;
    int e = errno;
    if (!conn_still_ours()) {
        int s = dial();
        if (s >= 0 && hello(s, FIL_CHILD_MSG_NOTES, 0, -1) != 0) {
            close(s);
            s = -1;
        }
        set_conn(s);
    }
    if (conn >= 0) {
        fil_child_reaped_t n = {FIL_CHILD_MAGIC, FIL_CHILD_MSG_REAPED, (int32_t)pid, st, 0};
        if (send(conn, &n, sizeof n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        }
    }
    errno = e;
}

FIL_API pid_t waitpid(pid_t pid, int *status, int options) {
    int local, *sp = status ? status : &local;
    if (!real_waitpid)
        resolve();
    pid_t r = real_waitpid(pid, sp, options);
    if (r > 0)
        note_reaped(r, *sp);
    return r;
}

FIL_API pid_t wait(int *status) { return waitpid(-1, status, 0); }

FIL_API pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru) {
    int local, *sp = status ? status : &local;
    if (!real_wait4)
        resolve();
    pid_t r = real_wait4(pid, sp, options, ru);
    if (r > 0)
        note_reaped(r, *sp);
    return r;
}

FIL_API pid_t wait3(int *status, int options, struct rusage *ru) {
    return wait4(-1, status, options, ru);
}

FIL_API int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options) {
    if (!real_waitid)
        resolve();
    int r = real_waitid(idtype, id, info, options);
    if (r == 0 && info && info->si_pid > 0 && !(options & WNOWAIT)) {
        int st = -1;
        if (info->si_code == CLD_EXITED)
            st = (info->si_status & 0xff) << 8;
        else if (info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED)
            st = (info->si_status & 0x7f) | (info->si_code == CLD_DUMPED ? 0x80 : 0);
        if (st >= 0)
            note_reaped(info->si_pid, st);
    }
    return r;
}

/* The peak resident set of this process image, bytes (VmHWM of
 * /proc/self/status: getrusage's ru_maxrss keeps the image before exec, so
 * a small child of a 400 MiB parent said 400 MiB); 0 if unreadable.
 * open, read, close only: any context. */
uint64_t fil_children_peak_rss(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    uint64_t kb = 0;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strstr(buf, "\nVmHWM:");
    if (!p)
        return 0;
    for (p += 7; *p == ' ' || *p == '\t'; p++)
        ;
    for (; *p >= '0' && *p <= '9'; p++)
        kb = kb * 10 + (uint64_t)(*p - '0');
    return kb * 1024u;
}

void fil_children_note_exit(int status) {
    fil_state_header_t *h = fil_state;
    if (!h || !__atomic_load_n(&fil_active, __ATOMIC_ACQUIRE) || h->pid != (int32_t)getpid())
        return; /* no state, not tracking, or a vfork child (the state is its parent's) */
    /* Its peak resident set, also for an _exit that runs no destructor
     * (multiprocessing's fork workers end that way). */
    uint64_t rss = fil_children_peak_rss();
    if (rss > h->exit_peak_rss)
        __atomic_store_n(&h->exit_peak_rss, rss, __ATOMIC_RELAXED);
    __atomic_store_n(&h->exit_code, status & 0xff, __ATOMIC_RELAXED);
    __atomic_store_n(&h->exited, 1, __ATOMIC_RELEASE);
}

/*
 * Say in this process's own state that it is about to replace its image
 * (the launcher drops a fork child that exec'd having allocated nothing:
 * Python 3.9's subprocess forks and execs `sh` that way). Keeps errno.
 * Context: any thread, or a vfork child: then the state is its parent's
 * and is left alone.
 */
void fil_children_before_exec(void) {
    fil_state_header_t *h = fil_state;
    int e = errno;
    if (h && registered && h->pid == (int32_t)getpid())
        __atomic_store_n(&h->execed, 1, __ATOMIC_RELEASE);
    errno = e;
}

static void on_exit_note(int status, void *arg) {
    (void)arg;
    fil_children_note_exit(status);
}

void fil_children_at_exit(void) { on_exit(on_exit_note, NULL); }

FIL_API void _exit(int status) {
    if (!real_exit_)
        resolve();
    fil_children_note_exit(status);
    real_exit_(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

FIL_API void _Exit(int status) {
    if (!real_Exit)
        resolve();
    fil_children_note_exit(status);
    real_Exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}
