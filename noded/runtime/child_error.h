/* How a job's first process tells herd-shim why the job could not start: herd-shim's own child
 * for a plain job, herd-chdir for a container job. It writes one ChildError to a close-on-exec
 * pipe and exits; an exec that succeeds closes the pipe, so herd-shim reads EOF instead.
 * Plain C: herd-chdir is a static C program. */
#ifndef HERD_NODED_RUNTIME_CHILD_ERROR_H_
#define HERD_NODED_RUNTIME_CHILD_ERROR_H_

enum ChildStage { kStageChdir = 1, kStageAffinity, kStageCredentials, kStageExec };

struct ChildError {
  int stage; /* a ChildStage */
  int err;   /* errno */
};

#endif /* HERD_NODED_RUNTIME_CHILD_ERROR_H_ */
