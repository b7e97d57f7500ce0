/* SPDX-License-Identifier: MIT */
/*
 * browser.c - opening the peak-memory report in the user's browser.
 *
 * Only when a graphical session is visible (DISPLAY or WAYLAND_DISPLAY set).
 * `xdg-open` runs detached: its own session, stdin/stdout/stderr on
 * /dev/null (it must never write into the program's output), never waited
 * for (the launcher exits right after, and init adopts it). It gets the
 * launcher's own environment, which never held our LD_PRELOAD. A missing
 * xdg-open is not an error. Supervisor only.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

/*
 * Start `xdg-open path` in the background if a display is available. Errors
 * are silent. Context: supervisor, after the child was reaped.
 */
void fil_cli_open_browser(const char *path)
{
    const char *x11 = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
    int fd;

    if (!(x11 && *x11) && !(wayland && *wayland))
        return;
    if (fork() != 0)
        return; /* parent (or fork failed): never wait */
    setsid();
    fil_cli_restore_sigpipe();
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    execlp("xdg-open", "xdg-open", path, (char *)NULL);
    _exit(127);
}
