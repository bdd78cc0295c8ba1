/* ThreadSanitizer builds only.
 *
 * Debian's librdkafka uses glibc's C11 threads (thrd_create, mtx_lock,
 * cnd_wait, ...). glibc implements them on its internal pthread entry points,
 * which GCC's ThreadSanitizer does not intercept: threads that librdkafka
 * starts have no sanitizer state (they crash in the allocator), and its locks
 * create no happens-before edges (false reports). Defining the C11 functions
 * here, in the test executable, interposes them for librdkafka.so and routes
 * them to the pthread functions that ThreadSanitizer does intercept. glibc
 * lays out mtx_t, cnd_t, thrd_t and once_flag like their pthread
 * counterparts, which is what makes the casts valid.
 *
 * The tsan preset's librdkafka (scripts/build-librdkafka.sh tsan) is itself
 * built with -fsanitize=thread, so its memory accesses are checked too, but
 * it still uses glibc's C11 threads (its CMake build picks them whenever
 * they compile), so this file stays for that build as well. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static int to_thrd(int err) {
  switch (err) {
    case 0: return thrd_success;
    case ETIMEDOUT: return thrd_timedout;
    case EBUSY: return thrd_busy;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
  }
}

struct start {
  thrd_start_t func;
  void* arg;
};

static void* trampoline(void* p) {
  struct start s = *(struct start*)p;
  free(p);
  return (void*)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  struct start* s = malloc(sizeof *s);
  if (s == NULL) return thrd_nomem;
  s->func = func;
  s->arg = arg;
  const int err = pthread_create((pthread_t*)thr, NULL, trampoline, s);
  if (err != 0) free(s);
  return to_thrd(err);
}

int thrd_join(thrd_t thr, int* res) {
  void* value = NULL;
  const int err = pthread_join((pthread_t)thr, &value);
  if (err == 0 && res != NULL) *res = (int)(intptr_t)value;
  return to_thrd(err);
}

int thrd_detach(thrd_t thr) { return to_thrd(pthread_detach((pthread_t)thr)); }

void thrd_exit(int res) { pthread_exit((void*)(intptr_t)res); }

int mtx_init(mtx_t* mtx, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int err = pthread_mutex_init((pthread_mutex_t*)mtx, &attr);
  pthread_mutexattr_destroy(&attr);
  return to_thrd(err);
}

int mtx_lock(mtx_t* mtx) { return to_thrd(pthread_mutex_lock((pthread_mutex_t*)mtx)); }
int mtx_trylock(mtx_t* mtx) { return to_thrd(pthread_mutex_trylock((pthread_mutex_t*)mtx)); }
int mtx_timedlock(mtx_t* mtx, const struct timespec* ts) {
  return to_thrd(pthread_mutex_timedlock((pthread_mutex_t*)mtx, ts));
}
int mtx_unlock(mtx_t* mtx) { return to_thrd(pthread_mutex_unlock((pthread_mutex_t*)mtx)); }
void mtx_destroy(mtx_t* mtx) { pthread_mutex_destroy((pthread_mutex_t*)mtx); }

int cnd_init(cnd_t* cnd) { return to_thrd(pthread_cond_init((pthread_cond_t*)cnd, NULL)); }
int cnd_signal(cnd_t* cnd) { return to_thrd(pthread_cond_signal((pthread_cond_t*)cnd)); }
int cnd_broadcast(cnd_t* cnd) { return to_thrd(pthread_cond_broadcast((pthread_cond_t*)cnd)); }
int cnd_wait(cnd_t* cnd, mtx_t* mtx) {
  return to_thrd(pthread_cond_wait((pthread_cond_t*)cnd, (pthread_mutex_t*)mtx));
}
int cnd_timedwait(cnd_t* cnd, mtx_t* mtx, const struct timespec* ts) {
  return to_thrd(pthread_cond_timedwait((pthread_cond_t*)cnd, (pthread_mutex_t*)mtx, ts));
}
void cnd_destroy(cnd_t* cnd) { pthread_cond_destroy((pthread_cond_t*)cnd); }

void call_once(once_flag* flag, void (*func)(void)) { pthread_once((pthread_once_t*)flag, func); }

/* librdkafka is not instrumented. Its reference counts are C11 atomics that
 * ThreadSanitizer cannot see, so the memory accesses that its calls to libc
 * make (free, memcpy, strcmp on its own buffers) look unordered although they
 * are not. ignore_noninstrumented_modules drops the accesses of interceptors
 * called from uninstrumented libraries while keeping their synchronization
 * (mutexes, condition variables), so every access made by the project's own
 * code, including the delivery-report callback, is still checked. */
const char* __tsan_default_options(void);
const char* __tsan_default_options(void) { return "ignore_noninstrumented_modules=1"; }
