/* SPDX-License-Identifier: BSD-3-Clause */
/* test_targets.c - unit tests for target set parsing and formatting. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "targets.h"
#include "tap.h"

static struct cohort_error *
fresh(struct cohort_error *err)
{
	err->text[0] = '\0';
	return err;
}

/* Parse spec and compare with the expected ids ("" for none). */
static void
parses(const char *spec, const char *want)
{
	struct cohort_error err;
	struct targets t;
	char got[128] = "";
	size_t len = 0;

	if (!ok(targets_parse(spec, &t, fresh(&err)) == 0, "parse '%s'", spec)) {
		diag("error: %s", err.text);
		return;
	}
	for (size_t i = 0; i < t.n; i++)
		len += snprintf(got + len, sizeof(got) - len, "%s%lld",
				i ? " " : "", (long long)t.ids[i]);
	ok(!t.all, "'%s' is not all", spec);
	is_str(got, want, "ids");
	targets_clear(&t);
}

static void
fails(const char *spec, const char *needle)
{
	struct cohort_error err;
	struct targets t;

	is_int(targets_parse(spec, &t, fresh(&err)), -1, spec);
	ok(t.ids == NULL && t.n == 0, "'%s' leaves an empty set", spec);
	if (!ok(err.text[0] != '\0' && strstr(err.text, needle) != NULL,
		"'%s' message has '%s'", spec, needle))
		diag("message: %s", err.text);
}

static void
test_parse(void)
{
	struct cohort_error err;
	struct targets t;

	ok(targets_parse("all", &t, fresh(&err)) == 0 && t.all && t.n == 0,
	   "'all' is all");
	targets_clear(&t);
	ok(targets_parse(NULL, &t, fresh(&err)) == 0 && t.all,
	   "NULL is all");
	targets_clear(&t);

	parses("2", "2");
	parses("0,2", "0 2");
	parses("1-3", "1 2 3");
	parses("3,1-2,2", "1 2 3");
	parses("5-5", "5");

	fails("", "empty");
	fails("a", "bad target 'a'");
	fails("1-", "bad target '1-'");
	fails("-1", "bad target '-1'");
	fails("3-1", "end is before the start");
	fails("1,,2", "bad target");
	fails("1,", "trailing comma");
	fails("99999999", "bad target '99999999'");
	fails("0-100000", "too large");
	fails("1 ,2", "bad target");
}

/* Format into a guarded buffer of the given size and check for overflow. */
static void
formats(const int64_t *ids, size_t n, size_t size, const char *want)
{
	char buf[64];

	memset(buf, '#', sizeof(buf));
	targets_format(ids, n, buf, size);
	if (!ok(strcmp(buf, want) == 0, "format into %zu bytes: '%s'", size,
		want))
		diag("got '%s'", buf);
	ok(buf[size] == '#', "%zu bytes not overrun", size);
}

static void
test_format(void)
{
	static const int64_t a[] = { 0, 1, 2, 3 }, b[] = { 0, 2, 3 };
	static const int64_t c[] = { 5 }, d[] = { 1, 3, 5, 7, 9, 11, 13 };
	char buf[8] = "zzz";

	formats(a, 4, 32, "0-3");
	formats(b, 3, 32, "0,2-3");
	formats(c, 1, 32, "5");
	formats(NULL, 0, 32, "");
	formats(d, 7, 32, "1,3,5,7,9,11,13");

	/* A buffer of exactly strlen + 1 bytes is not too small. */
	formats(a, 4, 4, "0-3");
	formats(b, 3, 6, "0,2-3");

	formats(d, 7, 10, "1,3,5...");
	formats(d, 7, 8, "1,3...");
	formats(d, 7, 4, "...");
	formats(d, 7, 3, "");
	formats(d, 7, 1, "");

	targets_format(a, 4, buf, 0);
	is_str(buf, "zzz", "size 0 writes nothing");
}

int
main(void)
{
	test_parse();
	test_format();
	return done_testing();
}
