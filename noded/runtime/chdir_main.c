/* herd-chdir [-r FD] [-o FD] [-e FD] DIR COMMAND [ARG...]: enters DIR, then executes COMMAND
 * (searched in PATH).
 *
 * herd-shim starts every container job through it: runc enters its own working directory as
 * root, before it becomes the job's user, whereas herd-chdir runs as the job's user already, so
 * the kernel checks that user's rights on DIR at the moment it is entered (a directory swapped
 * for a symbolic link after herd-shim checked it leads nowhere the user could not go).
 * herd-shim hands it to runc as an open descriptor, so nothing is written into the image; it is
 * linked statically because it runs inside any image, with whatever libc that image has or lacks.
 *
 * With -r FD, a failure is also reported on FD as a ChildError (child_error.h) for herd-shim.
 * With -o FD and -e FD, FD becomes the standard output, or error, first (herd-shim's pipes to
 * the job's output pump; runc's own output goes to the job's log).
 * Every descriptor above 2 (the one it was executed from, FD) is closed when COMMAND starts.
 * Exit status: 126 when DIR cannot be entered or COMMAND cannot be executed, 127 when COMMAND is
 * not found, 2 for bad usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "noded/runtime/child_error.h"

static int report_fd = -1;

static int Fail(int stage, int err, const char* what, const char* name) {
  fprintf(stderr, "herd: cannot %s '%s': %s\n", what, name, strerror(err));
  if (report_fd >= 0) {
    struct ChildError e = {stage, err};
    ssize_t written = write(report_fd, &e, sizeof e);
    (void)written;
  }
  return stage == kStageExec && err == ENOENT ? 127 : 126;
}

int main(int argc, char** argv) {
  int first = 1;
  int out_fd = -1, err_fd = -1;
  while (argc - first > 2 && (strcmp(argv[first], "-r") == 0 || strcmp(argv[first], "-o") == 0 ||
                              strcmp(argv[first], "-e") == 0)) {
    char* end = NULL;
    const char* text = argv[first + 1];
    long fd = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || fd < 3 || fd > 65535) {
      fprintf(stderr, "herd-chdir: bad descriptor '%s'\n", text);
      return 2;
    }
    const char option = argv[first][1];
    if (option == 'r') report_fd = (int)fd;
    if (option == 'o') out_fd = (int)fd;
    if (option == 'e') err_fd = (int)fd;
    first += 2;
  }
  if (argc - first < 2) {
    fprintf(stderr, "usage: herd-chdir [-r FD] [-o FD] [-e FD] DIR COMMAND [ARG...]\n");
    return 2;
  }
  if ((out_fd >= 0 && dup2(out_fd, 1) < 0) || (err_fd >= 0 && dup2(err_fd, 2) < 0)) {
    fprintf(stderr, "herd-chdir: cannot take the job's output: %s\n", strerror(errno));
    return 2;
  }
  /* The job inherits no descriptor of herd's. runc passes on only 0-2 and the ones herd-shim
   * asked it to preserve: this program's own (3) and FD, marked one by one where the kernel
   * lacks close_range. */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    fcntl(3, F_SETFD, FD_CLOEXEC);
    if (report_fd >= 0) fcntl(report_fd, F_SETFD, FD_CLOEXEC);
  }
  const char* dir = argv[first];
  if (chdir(dir) != 0) return Fail(kStageChdir, errno, "chdir to", dir);
  execvp(argv[first + 1], argv + first + 1);
  return Fail(kStageExec, errno, "run", argv[first + 1]);
}
