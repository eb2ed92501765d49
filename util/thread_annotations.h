// Clang thread-safety annotations (-Wthread-safety). They compile to nothing under other
// compilers, so GCC builds are unaffected; the clang CI build turns violations into errors.
#ifndef SESSIONSERVER_UTIL_THREAD_ANNOTATIONS_H_
#define SESSIONSERVER_UTIL_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define SS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) SS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY SS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) SS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) SS_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) SS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define REQUIRES(...) SS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) SS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) SS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) SS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS SS_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // SESSIONSERVER_UTIL_THREAD_ANNOTATIONS_H_
