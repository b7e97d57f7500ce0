/* SPDX-License-Identifier: MIT */
/*
 * state_writer.c - maps and grows the shared state file in the profiled process.
 *
 * The header is mapped once at startup. Each segment grows by whole chunks
 * appended at the end of the file (ftruncate, then mmap of just that range),
 * so existing chunks never move and pointers into them stay valid without a
 * lock on the read side. The chunk's offset is stored before nchunks is
 * advanced (release), which is the order a post-mortem reader relies on.
 *
 * Invariant: no memory here comes from malloc; the mappings are made with raw
 * system calls so they are not tracked as the program's. SIGNAL-SAFE FILE:
 * the dump reads the state through fil_state_at (fstat, ftruncate, raw
 * prlimit64 and raw mmap are the only calls beyond memory copies). The
 * file is never sized past the soft RLIMIT_FSIZE (size_file).
 *
 * Descriptors: the state's descriptor lives high (fil_sys_fd_high), out of
 * the program's way. A program may still close it (os.closerange(3, 1024),
 * daemons) and even open a file of its own under the same number, so each
 * growth first checks that the descriptor is still the memfd (device and
 * inode). If it is not, the memfd is opened again through the supervisor,
 * which holds it for the whole run under the number it handed down
 * (/proc/<supervisor>/fd/<n>), and the new descriptor replaces ours; the
 * number the program took over is never touched. Only if that fails too
 * does growth stop: what cannot be recorded is counted (stacks_dropped) and
 * the supervisor says so at exit.
 */
#include "fil/state_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fil/sys.h"

fil_state_header_t *fil_state;

/* Private pointers to the mapped chunks of each segment; written under the
 * tracker lock, read by anyone after the chunk is published. */
char *fil_state_chunks[FIL_SEG_COUNT][FIL_SEG_MAX_CHUNKS];
uint32_t fil_state_elem_size[FIL_SEG_COUNT] = {sizeof(fil_node_t), sizeof(int64_t), sizeof(int64_t),
                                               sizeof(fil_func_t), 1, sizeof(int64_t)};
static int state_fd = -1;
/* Identity of the memfd, checked before each growth: the program may close
 * our descriptor and open a file of its own under the same number, and that
 * file must never be truncated. */
static dev_t state_dev;
static ino_t state_ino;
/* Where the memfd can be opened again: the supervisor's pid and the number
 * it holds the memfd under (the one it handed down); 0 when the state is
 * private (no supervisor). Written at open. */
static int owner_pid;
static int owner_fd;

static fil_seg_t *seg_of(int s) {
    switch (s) {
    case FIL_SEG_NODES: return &fil_state->nodes;
    case FIL_SEG_BYTES: return &fil_state->bytes;
    case FIL_SEG_PEAK: return &fil_state->peak;
    case FIL_SEG_FUNCS: return &fil_state->funcs;
    case FIL_SEG_STOP: return &fil_state->stop;
    default: return &fil_state->strings;
    }
}

/*
 * Size fd to size bytes, as ftruncate, but never past the soft
 * RLIMIT_FSIZE: the kernel would refuse it with EFBIG and a SIGXFSZ,
 * which kills a process that has not ignored it (the interpreter ignores
 * it only once initialised, after the constructor made the state), and a
 * program under `ulimit -f` would die of the profiler's file. Beyond the
 * limit the state stops growing as on any failure (what cannot be
 * recorded is counted). 0, or -1 with errno set. SIGNAL CONTEXT: raw
 * prlimit64, ftruncate.
 */
static int size_file(int fd, uint64_t size) {
    struct rlimit rl;
    if (syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, NULL, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        size > (uint64_t)rl.rlim_cur) {
        errno = EFBIG;
        return -1;
    }
    return ftruncate(fd, (off_t)size);
}

/*
 * fil_state_open - map the header of the state file and initialise it.
 * Returns 0, or -1 with nothing mapped. Context: startup, single-threaded.
 */
int fil_state_open(int fd) {
    if (fd >= 0) {
        owner_pid = (int)getppid();
        owner_fd = fd;
    }
    if (fd < 0) {
        fd = (int)syscall(SYS_memfd_create, "fil-state", MFD_CLOEXEC);
        if (fd < 0)
            return -1;
        fd = fil_sys_fd_high(fd);
        FIL_ASSERT(fd > 2);
    }
    if (size_file(fd, FIL_STATE_HEADER_SIZE) != 0)
        return -1;
    fil_state_header_t *h = fil_sys_map_shared(fd, FIL_STATE_HEADER_SIZE, 0);
    if (!h)
        return -1;
    memset(h, 0, sizeof *h);
    h->version = FIL_STATE_VERSION;
    h->header_size = FIL_STATE_HEADER_SIZE;
    h->file_size = FIL_STATE_HEADER_SIZE;
    h->pid = getpid();
    h->nodes.elem_size = sizeof(fil_node_t);
    h->bytes.elem_size = sizeof(int64_t);
    h->peak.elem_size = sizeof(int64_t);
    h->funcs.elem_size = sizeof(fil_func_t);
    h->strings.elem_size = 1;
    h->stop.elem_size = sizeof(int64_t);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    state_dev = st.st_dev;
    state_ino = st.st_ino;
    fcntl(fd, F_SETFD, FD_CLOEXEC); /* programs this one execs must not inherit it */
    state_fd = fd;
    fil_state = h;
    __atomic_store_n(&h->magic, FIL_STATE_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

/* Append the decimal digits of v to p; returns the end. SIGNAL CONTEXT. */
static char *put_uint(char *p, unsigned v) {
    char tmp[16];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < (int)sizeof tmp);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* 1 if fd is (still) the state memfd. SIGNAL CONTEXT: fstat only. */
static int is_state(int fd) {
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == state_dev && st.st_ino == state_ino;
}

/*
 * Make state_fd the memfd again after the program closed (or reused) our
 * descriptor: open it through the supervisor's /proc/<pid>/fd/<n> and move
 * it high. 0, or -1 (state_fd unchanged). Context: tracker lock held;
 * SIGNAL CONTEXT (open, fstat, fcntl, close).
 */
static int reopen_state(void) {
    char path[64] = "/proc/", *p;
    if (owner_pid <= 0 || fil_state_no_reopen)
        return -1;
    p = put_uint(path + 6, (unsigned)owner_pid);
    memcpy(p, "/fd/", 4);
    p = put_uint(p + 4, (unsigned)owner_fd);
    *p = 0;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (!is_state(fd)) {
        close(fd);
        return -1;
    }
    state_fd = fil_sys_fd_high(fd);
    FIL_ASSERT(state_fd > 2); /* never one of the program's 0-2 */
    return 0;
}

/* Map one more chunk for segment s. 0, or -1. Context: tracker lock held. */
static int add_chunk(int s) {
    fil_seg_t *g = seg_of(s);
    uint32_t k = g->nchunks;
    if (k >= FIL_SEG_MAX_CHUNKS)
        return -1;
    size_t len = fil_page_round(fil_seg_chunk_elems(k) * g->elem_size);
    uint64_t off = fil_state->file_size;
    if (!is_state(state_fd) && reopen_state() != 0)
        return -1; /* the program closed our descriptor for good: stop growing */
    if (size_file(state_fd, off + len) != 0)
        return -1;
    char *p = fil_sys_map_shared(state_fd, len, (off_t)off);
    if (!p) {
        int e = errno;
        if (ftruncate(state_fd, (off_t)off) != 0) { /* keep the file honest */
        }
        errno = e;
        return -1;
    }
    fil_state_chunks[s][k] = p;
    g->chunk_off[k] = off;
    fil_state->file_size = off + len;
    __atomic_store_n(&g->nchunks, k + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Elements segment s can hold with its mapped chunks. */
static uint64_t capacity(const fil_seg_t *g) {
    return ((UINT64_C(1) << g->nchunks) - 1) << FIL_SEG_SHIFT;
}

/*
 * fil_state_reserve - make room for `more` elements after the published count.
 * 0, or -1 if the file could not grow. Context: tracker lock held.
 */
int fil_state_reserve(int s, uint64_t more) {
    fil_seg_t *g = seg_of(s);
    uint64_t need = g->count + more;
    if (s == FIL_SEG_NODES) { /* per-node arrays grow in step with the nodes */
        if (fil_state_reserve(FIL_SEG_BYTES, more) || fil_state_reserve(FIL_SEG_PEAK, more))
            return -1;
    }
    if (s == FIL_SEG_BYTES || s == FIL_SEG_PEAK || s == FIL_SEG_STOP)
        need = fil_state->nodes.count + more;
    while (capacity(g) < need)
        if (add_chunk(s) != 0)
            return -1;
    return 0;
}


/*
 * fil_state_add_string - append a length-prefixed string that does not cross
 * a chunk end. Its index, or UINT64_MAX. Context: tracker lock held.
 */
uint64_t fil_state_add_string(const char *s, size_t n) {
    fil_seg_t *g = &fil_state->strings;
    if (n > FIL_STRING_MAX)
        n = FIL_STRING_MAX;
    uint32_t k;
    uint64_t w;
    fil_seg_locate(g->count, &k, &w);
    if (w + 4 + n > fil_seg_chunk_elems(k))
        g->count = ((UINT64_C(1) << (k + 1)) - 1) << FIL_SEG_SHIFT; /* next chunk */
    if (fil_state_reserve(FIL_SEG_STRINGS, 4 + n) != 0)
        return UINT64_MAX;
    uint64_t at = g->count;
    char *p = fil_state_at(FIL_SEG_STRINGS, at);
    uint32_t len = (uint32_t)n;
    memcpy(p, &len, 4);
    memcpy(p + 4, s, n);
    __atomic_store_n(&g->count, at + 4 + n, __ATOMIC_RELEASE);
    return at;
}

/* Bytes of segment s's chunk k. */
static size_t chunk_len(int s, uint32_t k) {
    return fil_page_round(fil_seg_chunk_elems(k) * fil_state_elem_size[s]);
}

/* Chunks of segment s this process has mapped (the parent of a fork child
 * may have published more since the fork: they are not ours). */
static uint32_t known_chunks(int s) {
    uint32_t k = 0;
    while (k < FIL_SEG_MAX_CHUNKS && fil_state_chunks[s][k])
        k++;
    return k;
}

/* Write len bytes of p at offset off of fd. 0, or -1. */
static int put_at(int fd, const void *p, size_t len, uint64_t off) {
    if (lseek(fd, (off_t)off, SEEK_SET) != (off_t)off)
        return -1;
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, (const char *)p + done, len - done);
        if (n <= 0 && errno != EINTR)
            return -1;
        done += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

/* The segments a fork child starts with at zero: the per-node counters
 * and the stop copy (the tree and its names are what it inherits). */
static int zero_in_child(int s) {
    return s == FIL_SEG_BYTES || s == FIL_SEG_PEAK || s == FIL_SEG_STOP;
}

/* Copy the header and every chunk we know into fd, each at its offset,
 * except those of the segments a fork child starts with at zero: they stay
 * holes of the new file, which read as zeros and take no page until
 * written. 0, or -1. */
static int copy_into(int fd, uint64_t end) {
    if (size_file(fd, end) != 0 || put_at(fd, fil_state, FIL_STATE_HEADER_SIZE, 0) != 0)
        return -1;
    for (int s = 0; s < FIL_SEG_COUNT; s++)
        for (uint32_t k = 0; k < known_chunks(s) && !zero_in_child(s); k++)
            if (put_at(fd, fil_state_chunks[s][k], chunk_len(s, k), seg_of(s)->chunk_off[k]) != 0)
                return -1;
    return 0;
}

/* Map fd at off over the mapping at p (same length). 0, or -1. */
static int remap_at(void *p, size_t len, int fd, uint64_t off) {
    long r = syscall(SYS_mmap, p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                     (off_t)off);
    return r == (long)(uintptr_t)p ? 0 : -1;
}

/* The counters of a fresh process: nothing held, no peak, no events. The
 * per-node counters and the stop copy are zero already (copy_into left
 * them out of the new file). */
static void reset_counters(fil_state_header_t *h) {
    h->total = h->peak_total = 0;
    h->at_peak = h->snapshot_busy = 0;
    h->peak_ns = h->allocations = h->dropped = h->stacks_dropped = 0;
    memset(&h->oom, 0, sizeof h->oom);
    memset(&h->signals, 0, sizeof h->signals);
    h->stop_signal = 0;
    h->stop_total = 0;
    h->stop_ns = 0;
    h->exited = h->execed = 0;
    h->exit_code = 0;
    h->pid = getpid();
}

/*
 * fil_state_fork_child - in a fork() child, move to a state file of its
 * own: a new memfd holding a copy of the call-stack tree, the functions and
 * the names as this process inherited them (the node and function ids in
 * its stacks and caches stay valid), with every counter zero, mapped at
 * the very addresses of the parent's mappings (MAP_FIXED), so every
 * pointer into the state stays good and no write can reach the parent's
 * file again. Segments keep only the chunks this process had mapped at the
 * fork. 0, or -1 with the parent's mappings untouched (the caller must stop
 * tracking). The new state has no owner until fil_state_set_owner.
 * Context: fork child, single-threaded, guard set, before any tracking.
 */
int fil_state_fork_child(void) {
    uint64_t end = FIL_STATE_HEADER_SIZE;
    int fd = (int)syscall(SYS_memfd_create, "fil-state", MFD_CLOEXEC);
    if (!fil_state || fd < 0)
        return -1;
    fd = fil_sys_fd_high(fd);
    for (int s = 0; s < FIL_SEG_COUNT; s++)
        for (uint32_t k = 0; k < known_chunks(s); k++)
            if (seg_of(s)->chunk_off[k] + chunk_len(s, k) > end)
                end = seg_of(s)->chunk_off[k] + chunk_len(s, k);
    struct stat st;
    if (copy_into(fd, end) != 0 || fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    int bad = remap_at(fil_state, FIL_STATE_HEADER_SIZE, fd, 0);
    for (int s = 0; s < FIL_SEG_COUNT; s++) {
        fil_seg_t *g = seg_of(s);
        uint32_t n = known_chunks(s);
        for (uint32_t k = 0; k < n; k++)
            bad |= remap_at(fil_state_chunks[s][k], chunk_len(s, k), fd, g->chunk_off[k]);
        g->nchunks = n;
        uint64_t cap = capacity(g);
        if (g->count > cap) /* published by the parent after the fork */
            g->count = cap;
    }
    uint64_t per_node = capacity(&fil_state->bytes) < capacity(&fil_state->peak)
                            ? capacity(&fil_state->bytes)
                            : capacity(&fil_state->peak);
    if (fil_state->nodes.count > per_node) /* each node has its two counters */
        fil_state->nodes.count = per_node;
    fil_state->file_size = end;
    reset_counters(fil_state);
    state_fd = fd;
    state_dev = st.st_dev;
    state_ino = st.st_ino;
    owner_pid = owner_fd = 0;
    return bad ? -1 : 0;
}

void fil_state_set_owner(int pid, int fd) {
    owner_pid = pid;
    owner_fd = fd;
}

int fil_state_fd(void) { return state_fd; }

uint64_t fil_state_size(void) { return fil_state ? fil_state->file_size : 0; }

int fil_state_owner(void) { return owner_pid; }

/* Record the interpreter's version string (sys.version) in the header, cut
 * to fit. Context: Python extension start-up, GIL held. */
void fil_state_set_python_version(const char *v) {
    if (!fil_state || !v)
        return;
    size_t n = strlen(v);
    if (n >= sizeof fil_state->python_version)
        n = sizeof fil_state->python_version - 1;
    memcpy(fil_state->python_version, v, n);
    fil_state->python_version[n] = 0;
}
