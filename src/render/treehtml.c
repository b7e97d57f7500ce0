/* SPDX-License-Identifier: MIT */
/*
 * treehtml.c - the process tree in the main program's index.html: the
 * child processes with their peaks, how each ended and a link to its own
 * report, then the tree's view at its peak and when memory ran out
 * (tree-peak.svg, tree-oom.svg, drawn by the launcher: treeview.c).
 *
 * SIGNAL-SAFE FILE: it is linked with draw.c, which the dump uses; the
 * dump never has children to show (info is NULL there), but everything
 * here only formats into the caller's writer. Allowed calls: strlen.
 */
#include <signal.h>
#include <string.h>

#include "render_internal.h"

/* How child c ended, in words. */
static void ended(fil_writer_t *w, const fil_child_row_t *c) {
    char words[128];
    if (c->running) {
        fil_write_str(w, "still running when the program ended");
    } else if (c->execed) {
        fil_write_str(w, "replaced itself with exec (a later row of this pid)");
    } else if (c->oom_killed) {
        fil_write_str(w, "killed by the kernel's OOM killer (SIGKILL)");
    } else if (c->out_of_memory) {
        fil_write_str(w, "ran out of memory (exit ");
        fil_write_u64(w, (uint64_t)c->exit_status);
        fil_write_char(w, ')');
    } else if (c->term_signal) {
        fil_render_death_words(c->term_signal, 0, words, sizeof words);
        fil_write_xml(w, words, strlen(words));
    } else if (c->exit_known) {
        fil_write_str(w, "exit ");
        fil_write_u64(w, (uint64_t)c->exit_status);
    } else {
        fil_write_str(w, "ended (how is not known)");
    }
}

/* Its command line, cut to about 160 bytes. */
static void command(fil_writer_t *w, const fil_child_row_t *c) {
    size_t used = 0;
    for (int i = 0; i < c->argc && used < 160; i++) {
        size_t n = strlen(c->argv[i]);
        if (n > 160 - used)
            n = 160 - used;
        if (i)
            fil_write_char(w, ' ');
        fil_write_xml(w, c->argv[i], n);
        used += n + 1;
    }
    if (used >= 160)
        fil_write_str(w, " ...");
}

/* The table of child processes. */
static void children_table(fil_writer_t *w, const fil_run_info_t *in) {
    fil_write_str(w, "<section class=\"children\">\n<h2>Child processes</h2>\n"
                     "<p class=\"help\">");
    fil_write_u64(w, in->nchildren);
    fil_write_str(w, in->nchildren == 1 ? " Python process" : " Python processes");
    fil_write_str(w, " started by the program, each profiled on its own: its peak is its own "
                     "tracked high-water mark (exact), its report is in its folder.</p>\n"
                     "<table>\n<tr><th>pid</th><th>Command</th><th>How it ended</th>"
                     "<th>Its peak</th><th>Its report</th></tr>\n");
    for (uint32_t i = 0; i < in->nchildren && !w->failed; i++) {
        const fil_child_row_t *c = &in->children[i];
        fil_write_str(w, c->out_of_memory || c->term_signal ? "<tr class=\"died\"><td class=\"n\">"
                                                            : "<tr><td class=\"n\">");
        fil_write_u64(w, (uint64_t)(c->pid > 0 ? c->pid : 0));
        fil_write_str(w, "</td><td class=\"line\">");
        command(w, c);
        fil_write_str(w, c->kind && c->kind[0] == 'f' ? " (fork)" : "");
        fil_write_str(w, "</td><td>");
        ended(w, c);
        fil_write_str(w, "</td><td class=\"n\">");
        fil_write_size(w, c->peak_bytes);
        fil_write_str(w, "</td><td><a href=\"");
        fil_write_xml(w, c->folder, strlen(c->folder));
        fil_write_str(w, "/index.html\">");
        fil_write_xml(w, c->folder, strlen(c->folder));
        fil_write_str(w, "</a></td></tr>\n");
    }
    fil_write_str(w, "</table>\n</section>\n");
}

/* One moment of the tree: what each process held, and the graph. */
static void moment(fil_writer_t *w, const fil_tree_moment_t *m) {
    int peak = m->what[0] == 'p';
    fil_write_str(w, "<section class=\"graph\">\n<h2>");
    fil_write_xml(w, m->headline, strlen(m->headline));
    fil_write_str(w, "</h2>\n<p class=\"help\">");
    fil_write_str(w, peak ? "The whole tree's tracked memory, sampled every 10 ms by the "
                            "launcher, was highest at "
                          : "When a process ran out of memory or the OOM killer struck, at ");
    fil_write_seconds(w, m->t_ns);
    fil_write_str(w, " s");
    fil_write_str(w, ": ");
    fil_write_size(w, m->total);
    fil_write_str(w, " in all. ");
    for (uint32_t k = 0; k < m->nprocs; k++) {
        fil_write_str(w, k ? ", pid " : "pid ");
        fil_write_u64(w, (uint64_t)(m->pids[k] > 0 ? m->pids[k] : 0));
        fil_write_str(w, ": ");
        fil_write_size(w, m->held[k]);
    }
    fil_write_str(w, ". First level: the process. The moment is sampled (a peak between two "
                     "samples is missed, and the processes are read one after another); each "
                     "process's bytes are exactly what its tracker held when read. <a href=\"tree-");
    fil_write_str(w, m->what);
    fil_write_str(w, ".svg\">Open tree-");
    fil_write_str(w, m->what);
    fil_write_str(w, ".svg on its own</a>.</p>\n<object type=\"image/svg+xml\" data=\"tree-");
    fil_write_str(w, m->what);
    fil_write_str(w, ".svg\"></object>\n</section>\n");
}

/* See render_internal.h. */
void fil_render_html_tree(fil_writer_t *w, const fil_run_info_t *in) {
    if (!in || (!in->nchildren && !in->nmoments))
        return;
    if (in->nchildren)
        children_table(w, in);
    for (uint32_t i = 0; i < in->nmoments; i++)
        moment(w, &in->moments[i]);
}
