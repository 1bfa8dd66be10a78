// Clang's thread-safety annotations (-Wthread-safety), empty under other compilers. tandem's
// lock types are capabilities, so clang checks at compile time that guarded data is touched only
// with its lock held:
//
//   tandem::Lock lock;
//   int balance TANDEM_GUARDED_BY(lock) = 0;
//   void deposit(int n) { tandem::LockGuard guard(lock); balance += n; }  // fine
//   void steal(int n) { balance -= n; }                  // warning: requires holding 'lock'
#pragma once

#if defined(__clang__)
#define TANDEM_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TANDEM_THREAD_ANNOTATION(x)
#endif

#define TANDEM_CAPABILITY(name) TANDEM_THREAD_ANNOTATION(capability(name))
#define TANDEM_SCOPED_CAPABILITY TANDEM_THREAD_ANNOTATION(scoped_lockable)
#define TANDEM_GUARDED_BY(lock) TANDEM_THREAD_ANNOTATION(guarded_by(lock))
#define TANDEM_PT_GUARDED_BY(lock) TANDEM_THREAD_ANNOTATION(pt_guarded_by(lock))
#define TANDEM_REQUIRES(...) TANDEM_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define TANDEM_ACQUIRE(...) TANDEM_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TANDEM_RELEASE(...) TANDEM_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TANDEM_TRY_ACQUIRE(...) TANDEM_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define TANDEM_EXCLUDES(...) TANDEM_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define TANDEM_NO_THREAD_SAFETY_ANALYSIS TANDEM_THREAD_ANNOTATION(no_thread_safety_analysis)
