/* ring_floor.c — the C floor beside bench/queue.mjs: one-way throughput of an SPSC ring buffer in
 * shared memory (the project's baselines/c/ring.c, printing JSON). Parent = producer, fork()ed
 * child = consumer. Fixed-size slots in a MAP_SHARED ring (max(256 KiB, 16 slots)); head/tail are
 * 64-bit counters on separate cache lines, published once per message; each side caches the
 * other's counter and re-reads it only when the ring looks full/empty, busy-polling with pause.
 * Producer memcpy's each message in, consumer memcpy's it out and checks its sequence number.
 *   ring_floor MSG_BYTES COUNT     (MSG_BYTES a power of two >= 8)
 * Output: {"msgs_per_s": …, "gb_per_s": …} */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *shm_alloc(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    memset(p, 0, n);
    return p;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

struct ctl {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) _Atomic int ready;
};

int main(int argc, char **argv) {
    size_t msg = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
    uint64_t count = argc > 2 ? strtoull(argv[2], 0, 10) : 10000000;
    if (msg < 8 || (msg & (msg - 1))) { fprintf(stderr, "ring_floor: MSG_BYTES must be a power of two >= 8\n"); return 2; }
    size_t ring_bytes = msg * 16 > 262144 ? msg * 16 : 262144;
    uint64_t slots = ring_bytes / msg, mask = slots - 1;
    struct ctl *c = shm_alloc(sizeof *c);
    char *ring = shm_alloc(ring_bytes);
    char *local = aligned_alloc(64, msg);
    memset(local, 7, msg);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        uint64_t seen_head = 0, bad = 0;
        atomic_store(&c->ready, 1);
        for (uint64_t i = 0; i < count; i++) {
            while (seen_head <= i) {
                seen_head = atomic_load_explicit(&c->head, memory_order_acquire);
                if (seen_head <= i) cpu_relax();
            }
            memcpy(local, ring + (i & mask) * msg, msg);
            bad += *(uint64_t *)local != i;
            atomic_store_explicit(&c->tail, i + 1, memory_order_release);
        }
        _exit(bad ? 1 : 0);
    }
    while (!atomic_load(&c->ready)) cpu_relax();
    double t0 = now_ns();
    uint64_t seen_tail = 0;
    for (uint64_t i = 0; i < count; i++) {
        while (i - seen_tail >= slots) {
            seen_tail = atomic_load_explicit(&c->tail, memory_order_acquire);
            if (i - seen_tail >= slots) cpu_relax();
        }
        *(uint64_t *)local = i;
        memcpy(ring + (i & mask) * msg, local, msg);
        atomic_store_explicit(&c->head, i + 1, memory_order_release);
    }
    while (atomic_load_explicit(&c->tail, memory_order_acquire) != count) cpu_relax();
    double s = (now_ns() - t0) / 1e9;
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "ring_floor: the consumer saw bad messages\n"); return 1; }
    printf("{\"msgs_per_s\": %.1f, \"gb_per_s\": %.4f}\n", count / s, count * (double)msg / s / 1e9);
    return 0;
}
