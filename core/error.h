// error.h — the two error tiers of t2 (DESIGN.md §6).
// Library code never exits: it returns a status (0 ok, -1 error) or NULL and records a message that
// names the file / tensor / field at fault; callers read it with t2_last_error(). Programmer
// mistakes (broken invariants, not bad input) hit T2_ASSERT, which prints file:line and aborts.
#ifndef T2_ERROR_H
#define T2_ERROR_H

// Contract: the message of the most recent failure on this thread ("" if none).
const char *t2_last_error(void);
// Contract: record a printf-style message for this thread; always returns -1 (so `return t2_fail(...)`).
int t2_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Contract: like t2_fail but returns NULL, for functions that return pointers.
void *t2_fail_null(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Contract: prefix the current message with more context ("loading model DIR: " + old message).
void t2_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t2_error_clear(void);

void t2_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define T2_ASSERT(c) ((c) ? (void)0 : t2_assert_fail(#c, __FILE__, __LINE__))

#endif
