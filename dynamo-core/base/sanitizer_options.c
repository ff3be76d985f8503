/* The options every program of a sanitizer build (-DDYNAMO_SANITIZE=...)
 * runs with, built into each executable so that the tests, and a dynamod
 * started by hand, stop at the first finding the same way. Options in
 * ASAN_OPTIONS, UBSAN_OPTIONS or TSAN_OPTIONS still override these.
 *
 *   abort_on_error       a finding ends the program with SIGABRT, which no
 *                        exit code of dynamod or dynamoctl can be mistaken for
 *   quarantine_size_mb   freed memory ASan holds back, kept small: the default
 *                        256 MiB looks like the growth that the bounded-memory
 *                        tests look for
 *   print_stacktrace     where undefined behaviour happened, not only what
 *   second_deadlock_stack  both stacks of a lock-order inversion
 */
#define DYNAMO_SANITIZER_HOOK __attribute__((visibility("default"), used))

DYNAMO_SANITIZER_HOOK const char *__asan_default_options(void) {
  return "detect_leaks=1:abort_on_error=1:quarantine_size_mb=16";
}

DYNAMO_SANITIZER_HOOK const char *__ubsan_default_options(void) {
  return "print_stacktrace=1:abort_on_error=1";
}

DYNAMO_SANITIZER_HOOK const char *__tsan_default_options(void) {
  return "halt_on_error=1:abort_on_error=1:second_deadlock_stack=1";
}

/* libzmq is not built with TSan, so TSan cannot see how its I/O thread hands
 * a message's bytes to the thread that receives it (lock-free pipes of its
 * own): the copies and recv() it makes inside look like races with the code
 * that later reads those bytes. Accesses made by interceptors called from
 * libzmq are ignored; the project's own code is checked in full. */
DYNAMO_SANITIZER_HOOK const char *__tsan_default_suppressions(void) {
  return "called_from_lib:libzmq.so.5\n";
}
