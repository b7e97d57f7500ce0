/* SPDX-License-Identifier: MIT */
/*
 * test_limits.c - unit tests of the limits module.
 *
 * Design: fixture trees under tests/data/limits/<case>/ (a fake proc/ and
 * sys/fs/cgroup/) are passed as `root`, and every figure the profiler would
 * report (limit, usage, headroom, the cgroup directory) is asserted exactly.
 * Cases: v1 (host-style hierarchy, tighter parent, a decoy mount, an
 * over-long mountinfo line, a cgroup2 mount without memory), v2 (numeric
 * limit on the parent, "max" on the process's own cgroup), v2max (no limit
 * anywhere), container (mount root is the container's cgroup; a decoy above
 * the mount point), missing (files absent); the overcommit figures of
 * meminfo (CommitLimit, Committed_AS, SwapTotal). The refresh is tested on a
 * temporary tree whose files change between calls, and a smoke test reads the
 * real machine and lowers RLIMIT_AS. Data directory: $FIL_TEST_DATA, else
 * tests/data.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/limits/limits_internal.h"
#include "check.h"
#include "fil/limits.h"
#include "fil/report.h"

#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* Page size the module converts statm with. */
static uint64_t page(void)
{
    return (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Path of fixture tree `name` into out. */
static const char *fixture(char *out, size_t cap, const char *name)
{
    const char *data = getenv("FIL_TEST_DATA");

    snprintf(out, cap, "%s/limits/%s", data != NULL ? data : "tests/data", name);
    return out;
}

/* fil_limits_read on fixture `name`, with the real rlimits removed so that
 * the headroom depends on the fixture only. */
static void read_fixture(fil_limits_t *l, const char *name)
{
    char root[512];

    CHECK(fil_limits_read(l, fixture(root, sizeof root, name)) == 0);
    l->rlimit_as = FIL_UNLIMITED;
    l->rlimit_data = FIL_UNLIMITED;
}

/* Headroom, kind and limit in one check. */
static void check_headroom(const fil_limits_t *l, fil_limit_kind_t kind, uint64_t limit,
                           uint64_t head)
{
    fil_limit_kind_t k;
    uint64_t lim;

    CHECK_U64(fil_limits_headroom(l, &k, &lim), head);
    CHECK_STR(fil_limit_kind_name(k), fil_limit_kind_name(kind));
    CHECK_U64(lim, limit);
}

static void test_v1(void)
{
    fil_limits_t l;

    read_fixture(&l, "v1");
    CHECK_U64(l.mem_total, 16384000 * KIB);
    CHECK_U64(l.mem_available, 8192000 * KIB);
    CHECK_U64(l.swap_free, 1024 * KIB);
    CHECK_U64(l.vm_size, 25600 * page());
    CHECK_U64(l.vm_data, 12800 * page());
    CHECK_U64((uint64_t)l.cgroup_version, 1);
    /* the parent (2 GiB, 1.5 GiB used) is tighter than the child (1 GiB, 200 MiB used) */
    CHECK_U64(l.cgroup_limit, 2 * GIB);
    CHECK_U64(l.cgroup_usage, 1536 * MIB);
    CHECK_STR(l.cgroup_dir, "/sys/fs/cgroup/memory/process_api");
    check_headroom(&l, FIL_LIMIT_CGROUP, 2 * GIB, 512 * MIB);
}

static void test_v2(void)
{
    fil_limits_t l;

    read_fixture(&l, "v2");
    CHECK_U64(l.mem_total, 8000000 * KIB);
    CHECK_U64(l.swap_free, 0);
    CHECK_U64(l.vm_size, 2560 * page());
    CHECK_U64((uint64_t)l.cgroup_version, 2);
    CHECK_U64(l.cgroup_limit, 4 * GIB);
    CHECK_U64(l.cgroup_usage, 3 * GIB);
    CHECK_STR(l.cgroup_dir, "/sys/fs/cgroup/user.slice");
    check_headroom(&l, FIL_LIMIT_CGROUP, 4 * GIB, GIB);

    read_fixture(&l, "v2max");
    CHECK_U64((uint64_t)l.cgroup_version, 2);
    CHECK_U64(l.cgroup_limit, FIL_UNLIMITED);
    CHECK_U64(l.cgroup_usage, 7 * MIB);
    CHECK_STR(l.cgroup_dir, "/sys/fs/cgroup/app.scope");
    CHECK_U64(l.vm_size, 0); /* no statm in this tree */
    check_headroom(&l, FIL_LIMIT_SYSTEM, 6000000 * KIB, 6000000 * KIB);
}

static void test_container(void)
{
    fil_limits_t l;

    read_fixture(&l, "container");
    CHECK_U64((uint64_t)l.cgroup_version, 1);
    CHECK_U64(l.cgroup_limit, 512 * MIB);
    CHECK_U64(l.cgroup_usage, 128 * MIB);
    CHECK_STR(l.cgroup_dir, "/sys/fs/cgroup/memory");
    check_headroom(&l, FIL_LIMIT_CGROUP, 512 * MIB, 384 * MIB);
}

/* The overcommit figures a failed mapping is compared with (exhausted.c):
 * CommitLimit and Committed_AS absent from the v1 fixture stay unchanged,
 * SwapTotal is read in bytes; a missing file is -1. */
static void test_commit(void)
{
    char root[512];
    uint64_t limit = 7, committed = 9, swap = 0;

    CHECK(fil_limits_read_commit(fixture(root, sizeof root, "v1"), &limit, &committed, &swap) ==
          1);
    CHECK(swap == 2097152 * KIB);
    CHECK(limit == 7 && committed == 9);
    CHECK(fil_limits_read_commit(fixture(root, sizeof root, "missing"), &limit, &committed,
                                 &swap) == -1);
    CHECK(fil_limits_read_commit("", &limit, &committed, &swap) == 3); /* the real machine */
    CHECK(limit > 0 && committed > 0);
}

static void test_missing(void)
{
    const char *cases[] = {"missing", "no-such-tree"};
    char root[512];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fil_limits_t l;
        read_fixture(&l, cases[i]);
        CHECK_U64(l.mem_total, 0);
        CHECK_U64(l.mem_available, 0);
        CHECK_U64(l.vm_size, 0);
        CHECK_U64((uint64_t)l.cgroup_version, 0);
        CHECK_U64(l.cgroup_limit, FIL_UNLIMITED);
        CHECK_STR(l.cgroup_dir, "");
        check_headroom(&l, FIL_LIMIT_NONE, FIL_UNLIMITED, FIL_UNLIMITED);
        CHECK(fil_limits_refresh(&l, fixture(root, sizeof root, cases[i])) == -1);
    }
}

/* Write text to root/rel (directories must exist). */
static void put_file(const char *root, const char *rel, const char *text)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* Write a meminfo with the given kB figures. */
static void put_meminfo(const char *root, unsigned total, unsigned avail, unsigned swap)
{
    char text[256];

    snprintf(text, sizeof text, "MemTotal: %u kB\nMemAvailable: %u kB\nSwapFree: %u kB\n", total,
             avail, swap);
    put_file(root, "proc/meminfo", text);
}

/* Make root/{proc/self,cg} under a new temporary directory. */
static void make_tree(char *root, size_t cap)
{
    char path[1024];

    snprintf(root, cap, "/tmp/fil-test-limits-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    snprintf(path, sizeof path, "%s/proc", root);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/proc/self", root);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/cg", root);
    CHECK(mkdir(path, 0755) == 0);
}

/* Remove what make_tree and the test created. */
static void remove_tree(const char *root)
{
    const char *rel[] = {"proc/meminfo", "proc/self/statm", "proc/self/limits", "cg/memory.current",
                         "cg/memory.stat", "cg/memory.usage_in_bytes", "proc/self",
                         "proc", "cg", ""};
    char path[1024];

    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, rel[i]);
        CHECK(remove(path) == 0);
    }
}

static void test_refresh(void)
{
    char root[256];
    fil_limits_t l;

    make_tree(root, sizeof root);
    put_meminfo(root, 4000000, 3000000, 1000);
    put_file(root, "proc/self/statm", "100 1 1 1 0 50 0\n");
    CHECK(fil_limits_read(&l, root) == 0);
    l.rlimit_as = l.rlimit_data = FIL_UNLIMITED;
    /* a cgroup chosen at startup; refresh only re-reads its usage */
    l.cgroup_version = 2;
    l.cgroup_limit = GIB;
    snprintf(l.cgroup_dir, sizeof l.cgroup_dir, "/cg");
    put_file(root, "cg/memory.current", "104857600\n");
    CHECK(fil_limits_refresh(&l, root) == 0);
    CHECK_U64(l.cgroup_usage, 100 * MIB);
    check_headroom(&l, FIL_LIMIT_CGROUP, GIB, 924 * MIB);

    put_meminfo(root, 1, 500000, 24);
    put_file(root, "proc/self/statm", "300 1 1 1 0 200 0\n");
    put_file(root, "cg/memory.current", "1073741824\n");
    CHECK(fil_limits_refresh(&l, root) == 0);
    CHECK_U64(l.mem_total, 4000000 * KIB); /* static: not re-read */
    CHECK_U64(l.mem_available, 500000 * KIB);
    CHECK_U64(l.swap_free, 24 * KIB);
    CHECK_U64(l.vm_size, 300 * page());
    CHECK_U64(l.vm_data, 200 * page());
    CHECK_U64(l.cgroup_usage, GIB);
    check_headroom(&l, FIL_LIMIT_CGROUP, GIB, 0); /* usage reached the limit */
    l.cgroup_limit = 2 * GIB;
    check_headroom(&l, FIL_LIMIT_SYSTEM, 500024 * KIB, 500024 * KIB);

    /* Inactive file cache is reclaimed before an OOM kill: it does not count. */
    put_file(root, "cg/memory.stat", "anon 1\nfile 5\ninactive_file 268435456\nactive_file 9\n");
    CHECK(fil_limits_refresh(&l, root) == 0);
    CHECK_U64(l.cgroup_usage, 768 * MIB);
    l.cgroup_version = 1; /* v1 names: memory.usage_in_bytes, total_inactive_file */
    put_file(root, "cg/memory.usage_in_bytes", "1073741824\n");
    put_file(root, "cg/memory.stat", "inactive_file 1\ntotal_inactive_file 1073741825\n");
    CHECK(fil_limits_refresh(&l, root) == 0);
    CHECK_U64(l.cgroup_usage, 0); /* more cache than usage: clamped */

    /* The soft rlimits the program set itself (setrlimit after startup),
     * as /proc/self/limits shows them: lowered, then raised again. */
    l.cgroup_version = 0;
    put_meminfo(root, 4000000, 3000000, 1000);
    put_file(root, "proc/self/limits",
             "Limit                     Soft Limit           Hard Limit           Units     \n"
             "Max cpu time              unlimited            unlimited            seconds   \n"
             "Max data size             536870912            unlimited            bytes     \n"
             "Max stack size            8388608              unlimited            bytes     \n"
             "Max address space         838860800            unlimited            bytes     \n");
    CHECK(fil_limits_refresh(&l, root) == 0);
    CHECK_U64(l.rlimit_as, 800 * MIB);
    CHECK_U64(l.rlimit_data, 512 * MIB);
    check_headroom(&l, FIL_LIMIT_RLIMIT_DATA, 512 * MIB, 512 * MIB - 200 * page());
    put_file(root, "proc/self/limits",
             "Max data size             unlimited            unlimited            bytes     \n"
             "Max address space         unlimited            unlimited            bytes     \n");
    CHECK(fil_limits_refresh(&l, root) == 0);
    CHECK_U64(l.rlimit_as, FIL_UNLIMITED);
    CHECK_U64(l.rlimit_data, FIL_UNLIMITED);
    remove_tree(root);
}

static void test_headroom(void)
{
    fil_limits_t l;
    fil_limit_kind_t k;

    memset(&l, 0, sizeof l);
    l.rlimit_as = l.rlimit_data = l.cgroup_limit = FIL_UNLIMITED;
    CHECK_U64(fil_limits_headroom(&l, NULL, NULL), FIL_UNLIMITED);
    l.rlimit_as = 2 * GIB;
    l.vm_size = GIB + 5;
    l.rlimit_data = 3 * GIB;
    l.vm_data = 2 * GIB;
    check_headroom(&l, FIL_LIMIT_RLIMIT_AS, 2 * GIB, GIB - 5);
    l.vm_data = 2 * GIB + 10;
    check_headroom(&l, FIL_LIMIT_RLIMIT_DATA, 3 * GIB, GIB - 10);
    l.vm_size = 3 * GIB; /* over the limit: no room, never "negative" */
    check_headroom(&l, FIL_LIMIT_RLIMIT_AS, 2 * GIB, 0);
    l.rlimit_as = UINT64_C(9223372036854771712); /* v1's "no limit" spelled out */
    l.cgroup_version = 1;
    l.cgroup_limit = 4 * GIB;
    l.cgroup_usage = 3 * GIB - 10; /* ties with RLIMIT_DATA: the first kind wins */
    check_headroom(&l, FIL_LIMIT_RLIMIT_DATA, 3 * GIB, GIB - 10);
    l.mem_total = 8 * GIB;
    l.mem_available = 100;
    l.swap_free = 20;
    check_headroom(&l, FIL_LIMIT_SYSTEM, 120, 120);
    CHECK_U64(fil_limits_headroom(&l, &k, NULL), 120);
    CHECK(k == FIL_LIMIT_SYSTEM);
    CHECK_STR(fil_limit_kind_name(FIL_LIMIT_RLIMIT_AS), "RLIMIT_AS");
    CHECK_STR(fil_limit_kind_name(FIL_LIMIT_RLIMIT_DATA), "RLIMIT_DATA");
    CHECK_STR(fil_limit_kind_name(FIL_LIMIT_CGROUP), "cgroup");
    CHECK_STR(fil_limit_kind_name(FIL_LIMIT_SYSTEM), "MemAvailable");
    CHECK_STR(fil_limit_kind_name(FIL_LIMIT_NONE), "none");
}

static void test_parse_size(void)
{
    static const struct {
        const char *text;
        int ok;
        uint64_t bytes;
    } cases[] = {
        {"123", 0, 123},
        {"0", 0, 0},
        {"123B", 0, 123},
        {"2G", 0, 2 * GIB},
        {"512M", 0, 512 * MIB},
        {"1.5GiB", 0, 1536 * MIB},
        {"1.5gb", 0, 1536 * MIB},
        {"100000k", 0, 100000 * KIB},
        {"2T", 0, 2048 * GIB},
        {"0.1K", 0, 102},
        {"1.0009765625K", 0, 1025},
        {"16777215.99999999999999999999T", 0, UINT64_MAX}, /* 2^64 - 2^40 + (2^40 - 1) */
        {"16777215.0000000000000000001T", 0, UINT64_MAX - MIB * MIB + 1},
        {"16777216T", -1, 0},
        {"18446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", -1, 0},
        {"", -1, 0},
        {"-1G", -1, 0},
        {"+1G", -1, 0},
        {" 1G", -1, 0},
        {"1G ", -1, 0},
        {"1X", -1, 0},
        {"1Gx", -1, 0},
        {"1GiBB", -1, 0},
        {"1.5", -1, 0},
        {"1.", -1, 0},
        {".5G", -1, 0},
        {"G", -1, 0},
        {"1e9", -1, 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 7;
        int rc = fil_parse_size(cases[i].text, &v);
        if (rc != cases[i].ok || (rc == 0 && v != cases[i].bytes) || (rc != 0 && v != 7)) {
            failures++;
            fprintf(stderr, "fil_parse_size(\"%s\") = %d, %" PRIu64 "; want %d, %" PRIu64 "\n",
                    cases[i].text, rc, v, cases[i].ok, cases[i].bytes);
        }
        checks++;
    }
}

static void test_parsers(void)
{
    uint64_t v = 0;
    char esc[] = "/sys/fs/cgroup/a\\040b\\134c\\9";
    char path[8];

    CHECK(fil_limits_parse_limit("max\n", &v) == 0 && v == FIL_UNLIMITED);
    CHECK(fil_limits_parse_limit("9223372036854771712\n", &v) == 0 && v == FIL_UNLIMITED);
    CHECK(fil_limits_parse_limit("  4096 \n", &v) == 0 && v == 4096);
    CHECK(fil_limits_parse_limit("4096k\n", &v) == -1);
    CHECK(fil_limits_parse_limit("\n", &v) == -1);
    CHECK(fil_limits_parse_limit("99999999999999999999\n", &v) == -1);
    CHECK_STR(fil_limits_unescape(esc), "/sys/fs/cgroup/a b\\c\\9");
    CHECK(fil_limits_path(path, sizeof path, "abc", "def", NULL, NULL) == 0);
    CHECK_STR(path, "abcdef");
    CHECK(fil_limits_path(path, sizeof path, "abc", "def", "g", "h") == -1);
    CHECK_STR(path, "");
}

/* The line assembler over an 8-byte buffer (lines of up to 6 bytes fit):
 * longer lines skipped, a final line
 * without '\n' kept, empty lines kept. */
static void test_lines(void)
{
    char tmp[] = "/tmp/fil-test-lines-XXXXXX";
    const char *want[] = {"one", "", "123456", "tail"};
    int fd = mkstemp(tmp);
    fil_limits_lines_t lr;
    char buf[8], *line;
    size_t n = 0;
    long len;

    CHECK(fd >= 0);
    CHECK(write(fd, "one\n\n1234567\n123456\nabcdefghijklmnopq\ntail", 42) == 42);
    close(fd);
    CHECK(fil_limits_lines_open(&lr, tmp, buf, sizeof buf) == 0);
    while ((len = fil_limits_lines_next(&lr, &line)) >= 0 && n < 4) {
        CHECK_STR(line, want[n]);
        CHECK_U64((uint64_t)len, strlen(want[n]));
        n++;
    }
    CHECK(len == -1);
    CHECK_U64(n, 4);
    fil_limits_lines_close(&lr);
    unlink(tmp);
}

static void test_json(void)
{
    const char *want =
        "{\"rlimit_as\": 4294967296, \"rlimit_data\": null, \"mem_total\": 16777216000, "
        "\"mem_available\": 8388608000, \"swap_free\": 1048576, \"cgroup_version\": 1, "
        "\"cgroup_limit\": 2147483648, \"cgroup_usage\": 1610612736, "
        "\"cgroup_dir\": \"/sys/fs/cgroup/memory/process_api\", \"vm_size\": 104857600, "
        "\"vm_data\": 52428800, \"tightest\": \"cgroup\", \"headroom\": 536870912}";
    char tmp[] = "/tmp/fil-test-json-XXXXXX";
    char wbuf[64], out[1024];
    fil_writer_t w;
    fil_limits_t l;
    int fd = mkstemp(tmp);
    long n;

    CHECK(fd >= 0);
    read_fixture(&l, "v1");
    l.rlimit_as = 4 * GIB;
    l.vm_size = 100 * MIB; /* statm is in pages: pin the figures */
    l.vm_data = 50 * MIB;
    fil_writer_init(&w, fd, wbuf, sizeof wbuf);
    fil_limits_write_json(&l, &w);
    CHECK(fil_writer_flush(&w) == 0);
    n = pread(fd, out, sizeof out - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    CHECK_STR(out, want);
    close(fd);
    unlink(tmp);
}

/* Print what the real machine looks like (useful in CI logs). */
static void print_limits(const char *what, const fil_limits_t *l)
{
    fil_limit_kind_t k;
    uint64_t lim, head = fil_limits_headroom(l, &k, &lim);

    printf("%s: rlimit_as=%" PRIu64 " rlimit_data=%" PRIu64 " mem_total=%" PRIu64
           " mem_available=%" PRIu64 " swap_free=%" PRIu64 " vm_size=%" PRIu64
           " vm_data=%" PRIu64 "\n  cgroup v%d dir=\"%s\" limit=%" PRIu64 " usage=%" PRIu64
           "\n  tightest=%s limit=%" PRIu64 " headroom=%" PRIu64 "\n",
           what, l->rlimit_as, l->rlimit_data, l->mem_total, l->mem_available, l->swap_free,
           l->vm_size, l->vm_data, l->cgroup_version, l->cgroup_dir, l->cgroup_limit,
           l->cgroup_usage, fil_limit_kind_name(k), lim, head);
}

static void test_real_machine(void)
{
    fil_limits_t l;
    struct rlimit saved, rl;
    fil_limit_kind_t k;
    uint64_t lim, want;

    CHECK(fil_limits_read(&l, "") == 0);
    print_limits("this machine", &l);
    CHECK(l.mem_total > 0);
    CHECK(l.vm_size > 0);
    CHECK(l.vm_data > 0 && l.vm_data <= l.vm_size);
    CHECK(l.cgroup_version == 0 || l.cgroup_dir[0] == '/');
    CHECK(fil_limits_refresh(&l, "") == 0);
    CHECK(getrlimit(RLIMIT_AS, &saved) == 0);
    want = l.vm_size + 64 * MIB;
    rl = saved;
    rl.rlim_cur = (rlim_t)want;
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    CHECK(fil_limits_read(&l, "") == 0);
    CHECK_U64(l.rlimit_as, want);
    l.rlimit_as = FIL_UNLIMITED;
    CHECK(fil_limits_refresh(&l, "") == 0); /* a limit set after startup */
    CHECK(setrlimit(RLIMIT_AS, &saved) == 0);
    CHECK_U64(l.rlimit_as, want);
    fil_limits_headroom(&l, &k, &lim);
    CHECK_STR(fil_limit_kind_name(k), "RLIMIT_AS");
    CHECK_U64(lim, want);
}

int main(void)
{
    test_v1();
    test_v2();
    test_container();
    test_missing();
    test_commit();
    test_refresh();
    test_headroom();
    test_parse_size();
    test_parsers();
    test_lines();
    test_json();
    test_real_machine();
    return check_summary("test_limits");
}
