// A name-service module (libnss_herdtest.so.2) that a container's /etc/nsswitch.conf may name:
// loaded by a process running as root, it leaves the file /nss-loaded-as-root behind. Used to
// show that herd never reads the container's name-service files with root's rights.
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void Mark() {
  if (geteuid() != 0) return;
  int fd = open("/nss-loaded-as-root", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) close(fd);
}
