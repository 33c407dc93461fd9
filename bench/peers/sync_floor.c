/* sync_floor.c — the C floor beside bench/lock.mjs.
 *   sync_floor lock N        ns per uncontended lock+unlock: robust pshared pthread mutex, pshared
 *                            sem_t, and a futex word (CAS + xchg, the scheme of native/sync.cc)
 *   sync_floor pingpong N S  two processes ping-pong over two futex words in MAP_SHARED memory,
 *                            each side spinning S µs before it parks (0: park at once); prints the
 *                            p50 and p99 round trip in ns
 * Output: one JSON object on stdout. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *shared(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    return p;
}

static void fwait(atomic_int *w, int v) { syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0); }
static void fwake(atomic_int *w) { syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0); }

struct locks {
    _Alignas(64) pthread_mutex_t robust;
    _Alignas(64) sem_t sem;
    _Alignas(64) atomic_int word;
};

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void lock_bench(long n) {
    struct locks *s = shared(sizeof *s);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&s->robust, &a) || sem_init(&s->sem, 1, 1)) { perror("init"); exit(1); }
    int me = (int)syscall(SYS_gettid);
    double r[3];
    for (int k = 0; k < 3; k++) {
        long long t = 0;
        for (int pass = 0; pass < 2; pass++) {
            long m = pass ? n : n / 10;
            long long t0 = now_ns();
            for (long i = 0; i < m; i++) {
                if (k == 0) { pthread_mutex_lock(&s->robust); pthread_mutex_unlock(&s->robust); }
                else if (k == 1) { sem_wait(&s->sem); sem_post(&s->sem); }
                else {
                    int z = 0;
                    if (!atomic_compare_exchange_strong(&s->word, &z, me)) abort();
                    if (atomic_exchange(&s->word, 0) & 0x40000000) fwake(&s->word);
                }
            }
            t = now_ns() - t0;
        }
        r[k] = (double)t / n;
    }
    printf("{\"robust\": %.2f, \"sem\": %.2f, \"word\": %.2f}\n", r[0], r[1], r[2]);
}

/* Waits until *w != 0, spinning `spin` ns first, then takes it (sets 0). */
static void take(atomic_int *w, atomic_int *parked, long long spin) {
    long long end = spin ? now_ns() + spin : 0;
    for (unsigned i = 0; ; i++) {
        if (atomic_exchange(w, 0)) return;
        if (!end || ((i & 63) == 0 && now_ns() >= end)) break;
    }
    atomic_fetch_add(parked, 1);
    while (!atomic_exchange(w, 0)) fwait(w, 0);
    atomic_fetch_sub(parked, 1);
}

static void give(atomic_int *w, atomic_int *parked) {
    atomic_store(w, 1);
    if (atomic_load(parked)) fwake(w);
}

static void pingpong(long n, long long spin) {
    atomic_int *m = shared(4096);
    atomic_int *ping = m, *ping_parked = m + 1, *pong = m + 16, *pong_parked = m + 17;
    long warm = n / 10 + 100;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (long i = 0; i < n + warm; i++) { take(ping, ping_parked, spin); give(pong, pong_parked); }
        _exit(0);
    }
    long long *rt = malloc(sizeof *rt * n);
    for (long i = 0; i < n + warm; i++) {
        long long t = now_ns();
        give(ping, ping_parked);
        take(pong, pong_parked, spin);
        if (i >= warm) rt[i - warm] = now_ns() - t;
    }
    waitpid(pid, NULL, 0);
    qsort(rt, n, sizeof *rt, cmp);
    printf("{\"p50\": %lld, \"p99\": %lld}\n", rt[n / 2], rt[n * 99 / 100]);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "lock")) lock_bench(atol(argv[2]));
    else if (argc >= 4 && !strcmp(argv[1], "pingpong")) pingpong(atol(argv[2]), atoll(argv[3]) * 1000);
    else { fprintf(stderr, "usage: sync_floor lock N | pingpong N SPIN_US\n"); return 2; }
    return 0;
}
