/* rtt_floor.c: what the kernel allows, for bench/pipe.mjs and bench/pipe-cost.mjs. Two fork()ed
 * processes over one AF_UNIX SOCK_STREAM socketpair (what Pipe() gives), timed per iteration.
 *   rtt_floor block N SIZE    ping-pong SIZE bytes, blocking read/write (parks in the kernel)
 *   rtt_floor spin N SIZE     same, non-blocking, both sides spin on read() until data (EAGAIN loop)
 *   rtt_floor pollread N SIZE same, non-blocking, read() then on EAGAIN poll() and read() again
 *                             (the syscalls a non-blocking fd costs: what a recvSync with spin 0 does)
 *   rtt_floor eagain N        one read() of an empty non-blocking socket (ns per call)
 *   rtt_floor write N SIZE    one write() of SIZE bytes while a child drains the other end, timed in
 *                             chunks of 100 that start with the socket empty (never blocks)
 *   rtt_floor drain           read fd 3 until EOF, 128 KiB at a time (a sink for another sender)
 * Prints one JSON object: {"p50_ns", "p99_ns", "per_s"} or {"ns_per_call"}. Each process dies
 * with its parent (PR_SET_PDEATHSIG); the echoing child also ends at EOF. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static int use_poll; /* on EAGAIN: poll() for POLLIN, else retry at once (spin) */

/* Reads exactly n bytes (blocking fd, or non-blocking: spin or poll on EAGAIN). 0 at EOF. */
static int xread(int fd, char *buf, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, buf + off, n - off);
        if (r < 0) {
            if (errno == EAGAIN && use_poll) {
                struct pollfd p = {fd, POLLIN, 0};
                poll(&p, 1, -1);
                continue;
            }
            if (errno == EINTR || errno == EAGAIN) continue;
            die("read");
        }
        if (r == 0) return 0;
        off += (size_t)r;
    }
    return 1;
}

static void xwrite(int fd, const char *buf, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t r = write(fd, buf + off, n - off);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("write");
        }
        off += (size_t)r;
    }
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *s, long n, int p) {
    long i = (p * n + 99) / 100 - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return s[i];
}

int main(int argc, char **argv) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* the bench is gone: so are we */
    if (argc >= 2 && !strcmp(argv[1], "drain")) {
        static char sink[131072];
        for (;;) {
            ssize_t r = read(3, sink, sizeof sink);
            if (r > 0) continue;
            if (r == 0) return 0;
            if (errno == EINTR) continue;
            if (errno != EAGAIN) die("read");
            struct pollfd p = {3, POLLIN, 0};
            poll(&p, 1, -1);
        }
    }
    if (argc < 3) { fprintf(stderr, "usage: rtt_floor block|spin|eagain|write N [SIZE] | drain\n"); return 2; }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    size_t size = argc > 3 ? (size_t)atol(argv[3]) : 64;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    char *buf = calloc(1, size < 131072 ? 131072 : size);

    if (!strcmp(mode, "eagain")) {
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        for (long i = 0; i < n / 10; i++) (void)!read(sv[0], buf, 64);
        int64_t t0 = now_ns();
        for (long i = 0; i < n; i++) (void)!read(sv[0], buf, 64);
        printf("{\"ns_per_call\": %.1f}\n", (double)(now_ns() - t0) / n);
        return 0;
    }

    use_poll = !strcmp(mode, "pollread");
    int spin = !strcmp(mode, "spin") || use_poll, wr = !strcmp(mode, "write");
    if (!spin && !wr && strcmp(mode, "block")) { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
    long warm = n / 10, total = warm + n;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        close(sv[0]);
        if (wr) {  /* drain until EOF */
            while (read(sv[1], buf, 131072) > 0) {}
            _exit(0);
        }
        if (spin) fcntl(sv[1], F_SETFL, O_NONBLOCK);
        for (long i = 0; i < total; i++) {
            if (!xread(sv[1], buf, size)) _exit(0);
            xwrite(sv[1], buf, size);
        }
        _exit(0);
    }
    close(sv[1]);
    if (wr) {
        int64_t ns_sum = 0;
        long timed = 0;
        for (long c = 0; c < total / 100; c++) {
            int queued;
            while (ioctl(sv[0], SIOCOUTQ, &queued) == 0 && queued > 0) sched_yield();
            int64_t t0 = now_ns();
            for (int i = 0; i < 100; i++) xwrite(sv[0], buf, size);
            if (c >= warm / 100) { ns_sum += now_ns() - t0; timed += 100; }
        }
        double ns = (double)ns_sum / timed;
        close(sv[0]);
        waitpid(pid, NULL, 0);
        printf("{\"ns_per_call\": %.1f}\n", ns);
        return 0;
    }
    if (spin) fcntl(sv[0], F_SETFL, O_NONBLOCK);
    int64_t *s = malloc(sizeof(int64_t) * (size_t)n);
    for (long i = 0; i < warm; i++) { xwrite(sv[0], buf, size); xread(sv[0], buf, size); }
    int64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        xwrite(sv[0], buf, size);
        xread(sv[0], buf, size);
        s[i] = now_ns() - t0;
    }
    double per_s = n / ((double)(now_ns() - start) / 1e9);
    close(sv[0]);
    waitpid(pid, NULL, 0);
    qsort(s, (size_t)n, sizeof *s, cmp64);
    printf("{\"p50_ns\": %lld, \"p99_ns\": %lld, \"per_s\": %.1f}\n",
           (long long)pct(s, n, 50), (long long)pct(s, n, 99), per_s);
    return 0;
}
