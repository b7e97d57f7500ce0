/* SPDX-License-Identifier: MIT */
/*
 * oom.c - out-of-memory detection: limits, the emergency arena, the check.
 *
 * At startup the limits are read once, the arena is reserved (sized from the
 * number of call stacks, so a dump never needs memory it did not reserve),
 * the unwinder is warmed up and the crash handlers installed.
 *
 * The arena's pages are faulted in ("resident") only where a fault could be
 * refused: when less than resident_room is left under the cgroup limit or
 * in the system's available memory, at startup or at any later check (a
 * request counts as written). Address space is not such a place: under
 * RLIMIT_AS and RLIMIT_DATA the mapping itself is what counts, and it is
 * made at startup; under vm.overcommit_memory=2 it is committed when it is
 * mapped. So a process with memory to spare (the common case, and every
 * short-lived child the program starts) pays for no page it never uses,
 * and once memory may get short the arena is resident long before the
 * margin is reached. Transparent huge pages are asked for: faulting in 2 MiB
 * at a time costs a fifth of 4 KiB faults.
 *
 * The predictive check costs a thread-local subtraction per allocation: each
 * allocation spends its size from its thread's allowance, which is taken
 * from fil_oom_budget in 1 MiB slices; only when the budget runs out does
 * fil_oom_check() re-read the limits (a few small /proc and
 * cgroup files) and hand out a new budget: a quarter of what is left before
 * the safety margin, at most 256 MiB. So the files are read rarely while
 * memory is plentiful and more often as the limit comes near.
 *
 * Which limits are predicted: under RLIMIT_AS and RLIMIT_DATA the kernel
 * fails the request cleanly (NULL / ENOMEM), which is caught and dumped
 * exactly, with the arena already mapped; predicting it would only risk
 * false alarms (address space is reserved in large steps that small
 * requests never need). Under a cgroup limit or system-wide exhaustion the
 * kernel does not fail a request, it kills the process: there a request
 * that would leave less than the safety margin is treated as out of memory
 * (default margin: 5% of the limit, between 16 and 256 MiB).
 */
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/lock.h"
#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/sys.h"
#include "oom_internal.h"
#include "../limits/limits_internal.h"
#include "../render/render_internal.h"

int64_t fil_oom_budget = INT64_MAX;
__thread int64_t fil_oom_local __attribute__((tls_model("initial-exec")));
#define SLICE (INT64_C(1) << 20)
fil_oom_config_t fil_oom_cfg;
char *fil_oom_arena;
size_t fil_oom_arena_size;
int fil_oom_arena_moving;
/* Nodes the arena is sized for; reaching it zeroes the budget so the next
 * allocation grows the arena. Written under the lock. */
uint32_t fil_oom_arena_nodes;
/* 1 once every page of the arena (and of each later growth) is faulted in.
 * Set once, under the lock; a fork child inherits it. */
static int resident;
/* Fault the arena in when less than this is left under a limit that kills
 * (4 x the margin + budget_cap, below): well above the margin, where a
 * prediction dumps, and more than a budget above it. */
static uint64_t resident_room;

static int refreshing;                /* one thread refreshes at a time */
static uint64_t test_count;           /* allocations seen in fault-injection mode */
static const uint64_t budget_cap = UINT64_C(256) << 20;

void (*fil_oom_test_hook)(void);

/* Allocate from inside the dump: the wrapper must abort the process. */
static void malloc_in_dump(void) {
    void *volatile p = malloc(16);
    free(p);
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *s = getenv(name);
    uint64_t v;
    return s && fil_parse_size(s, &v) == 0 ? v : dflt;
}

static void copy_env(char *out, size_t cap, const char *name, const char *dflt) {
    const char *s = getenv(name);
    if (!s || !*s)
        s = dflt;
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Default margin: 5% of the tightest cgroup/system limit, within [16, 256]
 * MiB, and never more than a quarter of that limit (a 32 MiB cgroup gets
 * 8 MiB: a margin the size of the limit would call every allocation out of
 * memory). */
static uint64_t default_margin(const fil_limits_t *l) {
    uint64_t base = l->cgroup_limit != FIL_UNLIMITED ? l->cgroup_limit : l->mem_total;
    uint64_t m = base / 20;
    if (m < (UINT64_C(16) << 20))
        m = UINT64_C(16) << 20;
    if (m > budget_cap)
        m = budget_cap;
    if (base && m > base / 4)
        m = base / 4;
    return m;
}

/* vm.overcommit_memory (0 when unreadable, the kernel's default). */
static int read_overcommit(void) {
    char buf[16];
    const char *p = buf;
    uint64_t v;
    if (fil_limits_read_small("/proc/sys/vm/overcommit_memory", buf, sizeof buf) <= 0 ||
        fil_limits_parse_u64(&p, &v) != 0 || v > 2)
        return 0;
    return (int)v;
}

static void read_config(void) {
    fil_oom_config_t *c = &fil_oom_cfg;
    copy_env(c->dir, sizeof c->dir, "FIL_RESULT_DIR", "fil-result");
    copy_env(c->display_dir, sizeof c->display_dir, "FIL_RESULT_DISPLAY", c->dir);
    const char *mode = getenv("FIL_OOM_MODE");
    c->continue_mode = mode && strcmp(mode, "continue") == 0;
    const char *det = getenv("FIL_OOM_DETECTION");
    c->detection = !(det && strcmp(det, "0") == 0);
    c->verbose = getenv("FIL_VERBOSE") != NULL;
    c->quiet = getenv("FIL_QUIET") != NULL;
    c->fail_after = env_u64("FIL_TEST_FAIL_AFTER", 0);
    if (getenv("FIL_TEST_MALLOC_IN_DUMP"))
        fil_oom_test_hook = malloc_in_dump;
    c->margin = env_u64("FIL_SAFETY_MARGIN", default_margin(&fil_state->limits));
    c->overcommit = read_overcommit();
    struct stat st;
    c->err_fd = fcntl(2, F_DUPFD_CLOEXEC, fil_sys_fd_base());
    if (c->err_fd >= 0 && fstat(c->err_fd, &st) == 0) {
        c->err_dev = (uint64_t)st.st_dev;
        c->err_ino = (uint64_t)st.st_ino;
    } else if (c->err_fd >= 0) {
        close(c->err_fd);
        c->err_fd = -1;
    }
}

/* Pre-fault [from, to) of p: the memory is ours from now on. A dump may be
 * drawing in these pages (it waits for the lock only a bounded time), so
 * the touch keeps their contents (fil_sys_touch_pages). */
static void prefault(char *p, size_t from, size_t to) { fil_sys_touch_pages(p, from, to); }

static int resident_claimed; /* a thread is in make_resident, or was */

/*
 * make_resident - fault in every page of the arena, once. One thread does
 * it; any other that asks meanwhile goes on at once (a dump faults what is
 * left itself), so threads running short together do not queue for the
 * lock page by page. A dump may be using the arena meanwhile: it holds the
 * lock while it does, but waits for it only a bounded time and then draws
 * without it. So the pages are touched 64 KiB at a time under the lock,
 * never holding it long, and the touch keeps what a dump already wrote
 * there. 1 if this call made it resident, else 0.
 * Context: lock not held; guard set.
 */
static int make_resident(void) {
    const size_t step = 64u << 10;
    int none = 0;
    if (__atomic_load_n(&resident, __ATOMIC_ACQUIRE) ||
        !__atomic_compare_exchange_n(&resident_claimed, &none, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return 0;
    for (size_t at = 0;; at += step) {
        fil_lock();
        size_t size = fil_oom_arena_size;
        if (resident || at >= size) {
            int made = !resident;
            __atomic_store_n(&resident, 1, __ATOMIC_RELEASE); /* later growths fault their tails */
            fil_unlock();
            return made;
        }
        prefault(fil_oom_arena, at, at + step < size ? at + step : size);
        fil_unlock();
    }
}

/*
 * size_arena - make the arena big enough for `nodes` call stacks (with room
 * to grow). The arena is extended with mremap, so pages already faulted move
 * along and only the new tail is touched (when the arena is resident); a
 * dump can never see the tail before it is faulted (the size is published
 * after). 0, or -1 with the old arena kept. Context: lock not held; guard set.
 */
static int size_arena(uint64_t nodes) {
    uint64_t want_nodes = nodes + nodes / 2 + 4096;
    size_t size = fil_page_round(fil_render_scratch_size(want_nodes));
    size_t old_size = fil_oom_arena_size;
    if (size <= old_size)
        return 0;
    char *p;
    if (!fil_oom_arena) {
        p = fil_sys_pages_huge(size);
    } else {
        /* A dump holds the lock while it uses the arena, unless it could not
         * get it in time: then it draws without it, and the arena must not
         * move under it. So the move is announced (fil_oom_arena_moving),
         * then a claimed dump is looked for (the dump looks at the flag after
         * its claim: arena_settled in dump.c); with one, the arena stays as
         * it is (the dump draws what fits). Signals are blocked meanwhile: a
         * dump of this very thread cannot come between the move and the new
         * address, and would wait for the flag for ever. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        fil_lock();
        __atomic_store_n(&fil_oom_arena_moving, 1, __ATOMIC_SEQ_CST);
        p = NULL;
        if (!fil_oom_dump_busy()) {
            long r = syscall(SYS_mremap, fil_oom_arena, old_size, size, MREMAP_MAYMOVE);
            p = (r < 0 && r > -4096) ? NULL : (char *)r;
        }
        if (p)
            fil_oom_arena = p; /* still old_size usable until the tail is faulted */
        __atomic_store_n(&fil_oom_arena_moving, 0, __ATOMIC_RELEASE);
        fil_unlock();
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (!p)
        return -1;
    int faulted = __atomic_load_n(&resident, __ATOMIC_ACQUIRE);
    if (faulted)
        prefault(p, old_size, size);
    FIL_ASSERT(size > old_size && want_nodes >= nodes); /* the arena only grows */
    fil_lock();
    if (!faulted && resident)
        prefault(p, old_size, size); /* made resident meanwhile, up to old_size */
    fil_oom_arena = p;
    fil_oom_arena_size = size;
    fil_oom_arena_nodes = want_nodes > FIL_NONE ? FIL_NONE : (uint32_t)want_nodes;
    fil_state->arena_size = size;
    fil_unlock();
    return 0;
}

/* dl_iterate_phdr callback: if the object holds fil_oom_init, the span of
 * its loaded segments into fil_oom_cfg.self_lo/hi, and stop. */
static int self_segments(struct dl_phdr_info *info, size_t size, void *arg) {
    uintptr_t me = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
    (void)size;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = (uintptr_t)info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (me < lo || me >= hi)
        return 0;
    fil_oom_cfg.self_lo = lo & ~(uintptr_t)4095;
    fil_oom_cfg.self_hi = hi;
    return 1;
}

/* The addresses of this library, so native stacks can skip the profiler's
 * frames: from the loader's own list (no /proc/self/maps to read). */
static void find_self(void) {
    uintptr_t me = (uintptr_t)&fil_oom_init;
    fil_oom_cfg.self_lo = me;
    fil_oom_cfg.self_hi = me;
    dl_iterate_phdr(self_segments, (void *)me);
}

/* SIGPIPE held back while the start-up lines of --verbose are written:
 * Python has not made it harmless yet, so a stderr whose reader has gone
 * (`2>&1 | head -1`) would end the program before it ran. The writes just
 * fail; a SIGPIPE they raised is taken back (one pending before is left). */
static int hold_sigpipe(sigset_t *old) {
    sigset_t pipe, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, old);
    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

static void release_sigpipe(const sigset_t *old, int was_pending) {
    sigset_t pipe, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec now = {0, 0};
        sigtimedwait(&pipe, NULL, &now);
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void say_limits(void) {
    char buf[1024];
    fil_writer_t w;
    sigset_t old;
    int was_pending = hold_sigpipe(&old);
    fil_writer_init(&w, 2, buf, sizeof buf);
    fil_write_str(&w, FIL_MSG_PREFIX);
    fil_write_str(&w, fil_oom_cfg.who);
    fil_write_str(&w, "limits: ");
    fil_limits_write_json(&fil_state->limits, &w);
    fil_write_str(&w, "\n" FIL_MSG_PREFIX);
    fil_write_str(&w, fil_oom_cfg.who);
    fil_write_str(&w, "safety margin ");
    fil_write_size(&w, fil_oom_cfg.margin);
    fil_write_str(&w, ", emergency arena ");
    fil_write_size(&w, fil_oom_arena_size);
    fil_write_str(&w, resident ? " (resident)" : " (reserved, made resident when memory runs short)");
    fil_write_str(&w, fil_oom_cfg.detection ? ", predictive detection on\n"
                                            : ", predictive detection off\n");
    fil_writer_flush(&w);
    release_sigpipe(&old, was_pending);
}

/* "[pid N] " into who. */
static void set_who(int pid) {
    char *p = fil_oom_cfg.who;
    char digits[16];
    int n = 0;
    unsigned v = (unsigned)pid;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < (int)sizeof digits);
    memcpy(p, "[pid ", 5);
    p += 5;
    while (n > 0)
        *p++ = digits[--n];
    memcpy(p, "] ", 3);
}

/*
 * fil_oom_child - this process is a child the program started: its dumps go
 * to its own folder (dir; display: as the user would type it) and its lines
 * on stderr say its pid. In a fork child the inherited arena pages are
 * shared with the parent until written, so if the arena is resident they
 * are written now, while memory is plentiful: a dump never faults in a page
 * that was meant to be resident. A fork child's dump is armed afresh
 * (fil_oom_fork_rearm).
 * Context: start-up or fork child, single-threaded.
 */
void fil_oom_child(const char *dir, const char *display, int forked) {
    size_t n = strnlen(dir, sizeof fil_oom_cfg.dir - 1);
    memcpy(fil_oom_cfg.dir, dir, n);
    fil_oom_cfg.dir[n] = 0;
    n = strnlen(display, sizeof fil_oom_cfg.display_dir - 1);
    memcpy(fil_oom_cfg.display_dir, display, n);
    fil_oom_cfg.display_dir[n] = 0;
    set_who(getpid());
    if (forked) {
        resident_claimed = resident; /* the thread that was making it resident is not here */
        fil_oom_fork_rearm();
    }
    if (forked && fil_oom_arena && resident)
        prefault(fil_oom_arena, 0, fil_oom_arena_size);
}

void fil_oom_warm_up(void) { fil_oom_warm_native(); }

void fil_oom_abandon(void) {
    if (fil_oom_arena)
        fil_sys_unmap(fil_oom_arena, fil_oom_arena_size);
    fil_oom_arena = NULL;
    fil_oom_arena_size = 0;
    fil_oom_arena_nodes = 0;
    if (fil_oom_cfg.err_fd >= 0)
        close(fil_oom_cfg.err_fd);
    fil_oom_cfg.err_fd = -1;
}

/* What a prediction found: which limit and how much room it left. */
typedef struct verdict {
    fil_limit_kind_t kind;
    uint64_t limit;
    uint64_t room;  /* what is left under that limit, margin included */
    uint64_t allow; /* bytes that may still be allocated before the next check */
} verdict_t;

static int too_big(const fil_limits_t *l, uint64_t size, verdict_t *v);

/* The budget until the next check: a quarter of what v allows, at most
 * budget_cap. */
static int64_t budget_of(const verdict_t *v) {
    uint64_t b = v->allow / 4 < budget_cap ? v->allow / 4 : budget_cap;
    return (int64_t)b;
}

/* Make the arena resident if a request of `size` written in full would
 * leave less than resident_room under the limit v names, or if no limit
 * that kills could be read at all (nothing says memory is plentiful).
 * After startup, --verbose says so in a line. Context: lock not held. */
static void resident_if_short(const verdict_t *v, uint64_t size, int startup) {
    if (!(v->kind == FIL_LIMIT_NONE || v->room < size || v->room - size < resident_room) ||
        !make_resident() || startup || !fil_oom_cfg.verbose)
        return;
    char buf[256];
    fil_writer_t w;
    fil_oom_line(&w, buf, sizeof buf);
    fil_write_str(&w, "emergency arena made resident (");
    fil_write_size(&w, fil_oom_arena_size);
    fil_write_str(&w, "): ");
    fil_write_size(&w, v->room);
    fil_write_str(&w, " left under ");
    fil_write_str(&w, fil_limit_kind_name(v->kind));
    fil_write_str(&w, "\n");
    fil_writer_flush(&w);
}

int fil_oom_init(int child) {
    if (child)
        set_who(getpid());
    fil_limits_read(&fil_state->limits, "");
    read_config();
    fil_state->margin = fil_oom_cfg.margin;
    fil_state->oom_detection = (uint32_t)fil_oom_cfg.detection;
    fil_state->oom_continue = (uint32_t)fil_oom_cfg.continue_mode;
    resident_room = fil_oom_cfg.margin * 4 + budget_cap;
    find_self();
    size_arena(0);
    memset(&fil_state->oom, 0, sizeof fil_state->oom);
    /* The first budget comes from the limits just read. Out of memory
     * already, or in fault-injection mode, the first allocation takes the
     * slow path (fil_oom_check). */
    verdict_t v = {FIL_LIMIT_NONE, 0, 0, 0};
    int oom = too_big(&fil_state->limits, 0, &v);
    resident_if_short(&v, 0, 1);
    fil_oom_budget = oom || fil_oom_cfg.fail_after ? 0
                     : !fil_oom_cfg.detection      ? INT64_MAX
                                                   : budget_of(&v);
    if (fil_oom_cfg.verbose)
        say_limits();
    return 0;
}

/* Headroom under RLIMIT_AS and RLIMIT_DATA (FIL_UNLIMITED if neither). */
static uint64_t rlimit_room(const fil_limits_t *l) {
    uint64_t hard = FIL_UNLIMITED;
    if (l->rlimit_as != FIL_UNLIMITED)
        hard = l->rlimit_as > l->vm_size ? l->rlimit_as - l->vm_size : 0;
    if (l->rlimit_data != FIL_UNLIMITED) {
        uint64_t data = l->rlimit_data > l->vm_data ? l->rlimit_data - l->vm_data : 0;
        if (data < hard)
            hard = data;
    }
    return hard;
}

/*
 * too_big - is memory about to run out where the kernel kills instead of
 * failing (the cgroup limit, system memory)? 1 if less than the safety margin
 * is left there, counted from what the program really uses (the cgroup's
 * usage, MemAvailable + SwapFree, less the arena while it is not resident),
 * 0 otherwise; *v says which limit and how much may be allocated before the
 * next check.
 *
 * The request's size is deliberately not part of the verdict (invariant 7):
 * a request is address space until it is touched, and a 20 GiB mapping of
 * which 10 MiB are written, or a 64 GiB MAP_NORESERVE reservation, is a
 * healthy program. Memory the program writes shows up in the usage, which
 * the next check reads; the budget between checks is a quarter of what is
 * left above the margin, so usage cannot jump past the margin unseen by more
 * than that while the program allocates. A request beyond the RLIMIT_AS /
 * RLIMIT_DATA headroom is let through: the kernel fails it and
 * fil_oom_failed reports it exactly. Context: any thread; pure.
 */
static int too_big(const fil_limits_t *l, uint64_t size, verdict_t *v) {
    v->kind = FIL_LIMIT_NONE;
    v->room = FIL_UNLIMITED;
    if (l->cgroup_limit != FIL_UNLIMITED) {
        v->kind = FIL_LIMIT_CGROUP;
        v->limit = l->cgroup_limit;
        v->room = l->cgroup_limit > l->cgroup_usage ? l->cgroup_limit - l->cgroup_usage : 0;
    }
    if (l->mem_total && l->mem_available + l->swap_free < v->room) {
        v->kind = FIL_LIMIT_SYSTEM;
        v->limit = l->mem_available + l->swap_free;
        v->room = v->limit;
    }
    if (v->kind == FIL_LIMIT_NONE) {
        v->allow = FIL_UNLIMITED;
        return 0;
    }
    /* An arena not yet resident is memory a dump will still take: under
     * these limits it counts as used, as it did when faulted at startup. */
    uint64_t pending = __atomic_load_n(&resident, __ATOMIC_ACQUIRE) ? 0 : fil_oom_arena_size;
    v->room = v->room > pending ? v->room - pending : 0;
    v->allow = v->room > fil_oom_cfg.margin ? v->room - fil_oom_cfg.margin : 0;
    return v->room < fil_oom_cfg.margin && size <= rlimit_room(l);
}

/* Fault injection: fail the Nth tracked allocation. */
static int injected_failure(void) {
    __atomic_store_n(&fil_oom_budget, 0, __ATOMIC_RELAXED);
    return __atomic_add_fetch(&test_count, 1, __ATOMIC_RELAXED) == fil_oom_cfg.fail_after;
}

int fil_oom_check(const char *fn, size_t size) {
    if (fil_oom_dumped() && !fil_oom_cfg.continue_mode)
        fil_oom_wait_forever();
    if (fil_stacks_node_count() >= fil_oom_arena_nodes)
        size_arena(fil_stacks_node_count());
    if (fil_oom_cfg.fail_after)
        return injected_failure() ? -1 : 0;
    if (!fil_oom_cfg.detection) {
        __atomic_store_n(&fil_oom_budget, INT64_MAX, __ATOMIC_RELAXED);
        return 0;
    }
    if (__atomic_exchange_n(&refreshing, 1, __ATOMIC_ACQUIRE))
        return 0; /* another thread is refreshing: it will set the budget */
    fil_limits_t l = fil_state->limits;
    fil_limits_refresh(&l, "");
    verdict_t v = {FIL_LIMIT_NONE, 0, 0, 0};
    int oom = too_big(&l, size, &v);
    int64_t b = budget_of(&v);
    FIL_ASSERT((uint64_t)b <= budget_cap && (!oom || v.room < fil_oom_cfg.margin));
    /* Before the budget lets others go on, and before a dump, which must
     * not meet a page of its arena for the first time. */
    resident_if_short(&v, size, 0);
    __atomic_store_n(&fil_oom_budget, b, __ATOMIC_RELAXED);
    __atomic_store_n(&refreshing, 0, __ATOMIC_RELEASE);
    if (!oom)
        return 0;
    if (fil_oom_dump(FIL_REASON_PREDICTED, fn, size, fil_stacks_current(), 0, NULL, v.kind,
                     v.limit, v.room) < 0)
        return 0; /* no dump possible: let the real allocator decide */
    if (!fil_oom_cfg.continue_mode)
        _exit(FIL_EXIT_OOM); /* the files are complete: fil_oom_dump returned */
    errno = ENOMEM;
    return -1;
}

int fil_oom_refill(const char *fn, size_t size) {
    if (size < (UINT64_C(1) << 20))
        fil_oom_local += (int64_t)size; /* undo the fast path's subtraction */
    FIL_ASSERT(fil_oom_local >= 0); /* the allowance is never overdrawn */
    if (!fil_oom_cfg.fail_after && size < (UINT64_C(1) << 40) &&
        __atomic_sub_fetch(&fil_oom_budget, (int64_t)size + SLICE, __ATOMIC_RELAXED) >= 0) {
        fil_oom_local += SLICE; /* the request itself was paid from the budget */
        return 0;
    }
    fil_oom_local = 0;
    return fil_oom_check(fn, size);
}

void fil_oom_failed(const char *fn, size_t size) {
    int e = errno;
    fil_limits_t l = fil_state->limits;
    fil_limits_refresh(&l, "");
    fil_limit_kind_t kind;
    uint64_t limit;
    uint64_t room = fil_limits_headroom(&l, &kind, &limit);
    if (fil_oom_dump(FIL_REASON_ALLOC_FAILED, fn, size, fil_stacks_current(), 0, NULL, kind,
                     limit, room) >= 0 &&
        !fil_oom_cfg.continue_mode)
        _exit(FIL_EXIT_OOM); /* the files are complete: fil_oom_dump returned */
    errno = e;
}

/* The crash handlers go in once the interpreter has set up its own signal
 * handling (see src/interpose/python.c). Context: GIL held, guard set. */
void fil_oom_install_late(void) {
    if (fil_oom_arena)
        fil_oom_install_crash_handlers();
}

void fil_oom_grow_arena(void) { size_arena(fil_stacks_node_count()); }

int fil_oom_dumping_here(void) { return fil_in_dump; }
