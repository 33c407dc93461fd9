/* spawn_floor.c: the C floor of bench/process.mjs (after /work/shared/baselines/c/spawn.c, which
 * times fork+exec of /bin/true). Per start: a pipe, t0, fork(), the child execs this binary again
 * ("child FD"), which writes its CLOCK_MONOTONIC start time (8 bytes) to the pipe and _exits;
 * the parent reads it ("running") and waitpid()s ("join").
 *   spawn_floor N WARM   -> {"call": [...], "entry": [...], "running": [...], "join": [...]} (ns since t0)
 * Dies with its parent (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static void print_list(const char *name, const int64_t *xs, int n, int last) {
  printf("\"%s\": [", name);
  for (int i = 0; i < n; i++) printf("%s%lld", i ? "," : "", (long long)xs[i]);
  printf("]%s", last ? "" : ", ");
}

int main(int argc, char **argv) {
  if (argc == 3 && argv[1][0] == 'c') { /* child FD */
    int64_t t = now_ns();
    if (write(atoi(argv[2]), &t, sizeof t) != sizeof t) _exit(1);
    _exit(0);
  }
  if (argc != 3) { fprintf(stderr, "usage: spawn_floor N WARM\n"); return 2; }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  int n = atoi(argv[1]), warm = atoi(argv[2]);
  int64_t *call = calloc(n, 8), *entry = calloc(n, 8), *running = calloc(n, 8), *join = calloc(n, 8);
  for (int i = 0; i < warm + n; i++) {
    int p[2];
    if (pipe(p)) die("pipe");
    char fd[16];
    snprintf(fd, sizeof fd, "%d", p[1]);
    int64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(p[0]);
      char *av[] = {argv[0], "child", fd, NULL};
      execv("/proc/self/exe", av);
      _exit(127);
    }
    int64_t t1 = now_ns();
    close(p[1]);
    int64_t e;
    ssize_t r;
    while ((r = read(p[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    if (r != sizeof e) { fprintf(stderr, "spawn_floor: no start time from the child\n"); return 1; }
    int64_t t2 = now_ns();
    int st;
    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) die("waitpid");
    int64_t t3 = now_ns();
    close(p[0]);
    if (st != 0) { fprintf(stderr, "spawn_floor: child status %d\n", st); return 1; }
    if (i >= warm) {
      int k = i - warm;
      call[k] = t1 - t0; entry[k] = e - t0; running[k] = t2 - t0; join[k] = t3 - t0;
    }
  }
  printf("{");
  print_list("call", call, n, 0);
  print_list("entry", entry, n, 0);
  print_list("running", running, n, 0);
  print_list("join", join, n, 1);
  printf("}\n");
  return 0;
}
