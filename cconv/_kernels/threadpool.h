/* cconv's thread pool: runs body(arg, tid) on tid 0 (the caller) and tid 1 .. n - 1 (pool
 * workers), and returns when the caller's body and every worker's body that started have
 * returned. A worker that has not started its body when the caller's returns never starts
 * it. So a call whose work items are taken on demand (_shares.pxd) finishes as soon as its
 * items are done, even when the scheduler has not run some worker at all (another process
 * holds that core); an OpenMP parallel region would wait at its end for that worker.
 *
 * Workers spin for a short while after a call (a network's next layer usually follows at
 * once), then sleep on a condition variable. One pool per process: compiled only into
 * _runtime, which the drivers call through a function pointer.
 */
#ifndef CC_THREADPOOL_H
#define CC_THREADPOOL_H

#include <Python.h>

#ifdef _WIN32
/* No pthreads: every call runs on its caller alone. */
static void cc_pool_run(void (*body)(void *, int), void *arg, int nthreads)
{
    (void)nthreads;
    body(arg, 0);
}
static int cc_pool_hold(int held) { (void)held; return 0; }
static unsigned long cc_pool_left(int moved) { (void)moved; return 0; }
#else
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define CC_POOL_MAX 256

typedef void (*cc_body_fn)(void *arg, int tid);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a new call, for sleeping workers */
    pthread_cond_t done;        /* the last started worker finished, for the caller */
    pthread_mutex_t callers;    /* one call at a time uses the workers */
    unsigned long gen;          /* the call's number; workers read it without the lock */
    cc_body_fn body;
    void *arg;
    int nthreads;               /* the call's, caller included */
    int open;                   /* workers may still start the call's body */
    int active;                 /* workers inside the call's body */
    int workers;                /* threads started */
    int sleepers;               /* workers waiting on `work` */
    int forked_init;
    int held;                   /* tests: workers start no call, as if never scheduled */
    int caller_cpu;             /* the CPU the caller published the call from, or -1 */
    unsigned long left;         /* tests: calls a worker left to the caller on its CPU */
    unsigned long moved;        /* tests: workers moved off their caller's CPU */
} cc_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
             PTHREAD_MUTEX_INITIALIZER, 0, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0};

static inline void cc_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield");
#endif
}

static inline double cc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* How long an idle worker spins before it sleeps, and how long a caller spins for its
 * started workers before it sleeps (decisions: Thread pool). */
#define CC_POOL_SPIN_S 2e-4
#define CC_CALLER_SPIN_S 5e-5

/* The CPU the calling thread runs on, or -1 where unknown. */
static inline int cc_cpu(void)
{
#if defined(__linux__) && defined(__GLIBC__)
    return sched_getcpu();
#else
    return -1;
#endif
}

/* Move the calling thread off CPU `cpu` to another it may run on, leaving it free to run
 * anywhere it could before: whether it moved. */
static int cc_move_off(int cpu)
{
#if defined(__linux__) && defined(__GLIBC__) && defined(CPU_SETSIZE)
    cpu_set_t allowed, others;
    if (cpu < 0 || cpu >= CPU_SETSIZE ||
        pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0)
        return 0;
    others = allowed;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) == 0 ||
        pthread_setaffinity_np(pthread_self(), sizeof others, &others) != 0)
        return 0;
    pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
    return cc_cpu() != cpu;
#else
    (void)cpu;
    return 0;
#endif
}

static unsigned long cc_pool_gen(void)
{
    return __atomic_load_n(&cc_pool.gen, __ATOMIC_ACQUIRE);
}

static void *cc_pool_worker(void *p)
{
    int tid = (int)(Py_ssize_t)p;
    unsigned long seen = 0;
    int sleep_next = 0;
#if defined(__linux__) && defined(__GLIBC__)
    pthread_setname_np(pthread_self(), "cconv-pool");
#endif
    for (;;) {
        /* Wait for a call newer than the last one seen: spin, then sleep. */
        double until = cc_now() + CC_POOL_SPIN_S;
        unsigned spins = 0;
        while (!sleep_next && cc_pool_gen() == seen) {
            cc_relax();
            if ((++spins & 255) == 0 && cc_now() > until)
                break;
        }
        pthread_mutex_lock(&cc_pool.mu);
        while (cc_pool.gen == seen) {
            cc_pool.sleepers++;
            pthread_cond_wait(&cc_pool.work, &cc_pool.mu);
            cc_pool.sleepers--;
        }
        seen = cc_pool.gen;
        /* A worker woken on its caller's CPU (the scheduler's choice when no core looked
         * free) would run in place of the caller, not beside it: it moves to another CPU
         * it may use; where there is none, it leaves the call to the caller and sleeps
         * until the next, for a worker spinning there takes the caller's time (decisions:
         * Workers on the caller's CPU). */
        sleep_next = 0;
        if (cc_pool.open && cc_pool.caller_cpu >= 0 && cc_cpu() == cc_pool.caller_cpu) {
            int caller_cpu = cc_pool.caller_cpu;
            pthread_mutex_unlock(&cc_pool.mu);
            int moved = cc_move_off(caller_cpu);
            pthread_mutex_lock(&cc_pool.mu);
            cc_pool.moved += moved;
            sleep_next = !moved;
        }
        if (sleep_next) {
            cc_pool.left++;
            pthread_mutex_unlock(&cc_pool.mu);
            continue;
        }
        if (!cc_pool.open || tid >= cc_pool.nthreads || cc_pool.held) {
            pthread_mutex_unlock(&cc_pool.mu);
            continue;
        }
        cc_pool.active++;
        cc_body_fn body = cc_pool.body;
        void *arg = cc_pool.arg;
        pthread_mutex_unlock(&cc_pool.mu);
        body(arg, tid);
        pthread_mutex_lock(&cc_pool.mu);
        if (--cc_pool.active == 0 && !cc_pool.open)
            pthread_cond_signal(&cc_pool.done);
        pthread_mutex_unlock(&cc_pool.mu);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: it starts its own when it needs them. */
static void cc_pool_after_fork(void)
{
    pthread_mutex_init(&cc_pool.mu, NULL);
    pthread_mutex_init(&cc_pool.callers, NULL);
    pthread_cond_init(&cc_pool.work, NULL);
    pthread_cond_init(&cc_pool.done, NULL);
    cc_pool.workers = cc_pool.sleepers = cc_pool.active = cc_pool.open = 0;
}

/* Start workers until there are n - 1 (fewer if the system refuses a thread: the call's
 * items are then taken by the threads there are). Holds cc_pool.mu. */
static void cc_pool_grow(int n)
{
    pthread_attr_t attr;
    if (!cc_pool.forked_init) {
        pthread_atfork(NULL, NULL, cc_pool_after_fork);
        cc_pool.forked_init = 1;
    }
    if (n > CC_POOL_MAX)
        n = CC_POOL_MAX;
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (cc_pool.workers < n - 1) {
        pthread_t t;
        if (pthread_create(&t, &attr, cc_pool_worker,
                           (void *)(Py_ssize_t)(cc_pool.workers + 1)) != 0)
            break;
        cc_pool.workers++;
    }
    pthread_attr_destroy(&attr);
}

/* Tests: with held set, workers start no call (as if the scheduler never ran them), so a
 * call must finish on its caller alone. Returns the previous setting. */
static int cc_pool_hold(int held)
{
    pthread_mutex_lock(&cc_pool.mu);
    int old = cc_pool.held;
    cc_pool.held = held;
    pthread_mutex_unlock(&cc_pool.mu);
    return old;
}

/* Tests: how many calls a worker has left to a caller running on its CPU (moved false), or
 * how many times a worker moved off its caller's CPU (moved true). */
static unsigned long cc_pool_left(int moved)
{
    pthread_mutex_lock(&cc_pool.mu);
    unsigned long n = moved ? cc_pool.moved : cc_pool.left;
    pthread_mutex_unlock(&cc_pool.mu);
    return n;
}

static void cc_pool_run(cc_body_fn body, void *arg, int nthreads)
{
    /* While another thread's call has the workers, this one runs on its caller alone: the
     * items are the same and each is computed whole, so the result does not change. */
    if (pthread_mutex_trylock(&cc_pool.callers) != 0) {
        body(arg, 0);
        return;
    }
    pthread_mutex_lock(&cc_pool.mu);
    if (cc_pool.workers < nthreads - 1)
        cc_pool_grow(nthreads);
    cc_pool.body = body;
    cc_pool.arg = arg;
    cc_pool.nthreads = nthreads;
    cc_pool.caller_cpu = cc_cpu();
    cc_pool.open = 1;
    cc_pool.active = 0;
    __atomic_store_n(&cc_pool.gen, cc_pool.gen + 1, __ATOMIC_RELEASE);
    if (cc_pool.sleepers)
        pthread_cond_broadcast(&cc_pool.work);
    pthread_mutex_unlock(&cc_pool.mu);

    body(arg, 0);

    /* Close the call: no worker starts it from now; wait for those that did. They are
     * running (or hold an item), so spin briefly before sleeping. */
    pthread_mutex_lock(&cc_pool.mu);
    cc_pool.open = 0;
    if (cc_pool.active) {
        double until = cc_now() + CC_CALLER_SPIN_S;
        while (cc_pool.active && cc_now() < until) {
            pthread_mutex_unlock(&cc_pool.mu);
            for (int i = 0; i < 64; i++)
                cc_relax();
            pthread_mutex_lock(&cc_pool.mu);
        }
        while (cc_pool.active)
            pthread_cond_wait(&cc_pool.done, &cc_pool.mu);
    }
    pthread_mutex_unlock(&cc_pool.mu);
    pthread_mutex_unlock(&cc_pool.callers);
}
#endif
#endif
