/* SPDX-License-Identifier: BSD-3-Clause */
/* targets.c - parsing and formatting of engine target sets. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"
#include "util.h"

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int
parse_id(const char *s, const char *end, int64_t *v)
{
	int64_t n = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		n = n * 10 + (*s - '0');
		if (n > TARGETS_MAX_ID)
			return -1;
	}
	*v = n;
	return 0;
}

static void
push_id(struct targets *t, size_t *cap, int64_t id)
{
	if (t->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		t->ids = xrealloc(t->ids, *cap * sizeof(int64_t));
	}
	t->ids[t->n++] = id;
}

/* Parse "all" or a comma-separated list of ids and ranges. */
int
targets_parse(const char *spec, struct targets *t, struct cohort_error *err)
{
	const char *p = spec;
	size_t cap = 0, j;

	memset(t, 0, sizeof(*t));
	if (spec == NULL || strcmp(spec, "all") == 0 || strcmp(spec, "*") == 0) {
		t->all = true;
		return 0;
	}
	if (*spec == '\0')
		return errprintf(err, "empty target list (use 'all', '0,2' "
				 "or '1-3')");
	while (*p != '\0') {
		const char *end = strchr(p, ','), *dash;
		int64_t lo, hi;

		if (end == NULL)
			end = p + strlen(p);
		dash = memchr(p, '-', end - p);
		if (dash == NULL) {
			if (parse_id(p, end, &lo) < 0)
				goto bad;
			hi = lo;
		} else {
			if (parse_id(p, dash, &lo) < 0 ||
			    parse_id(dash + 1, end, &hi) < 0)
				goto bad;
			if (hi < lo) {
				errprintf(err, "bad target range '%.*s': the "
					  "end is before the start",
					  (int)(end - p), p);
				goto error;
			}
			if (hi - lo >= 65536) {
				errprintf(err, "target range '%.*s' is too "
					  "large", (int)(end - p), p);
				goto error;
			}
		}
		for (int64_t id = lo; id <= hi; id++)
			push_id(t, &cap, id);
		if (*end == '\0')
			break;
		p = end + 1;
		if (*p == '\0') {
			errprintf(err, "bad target list '%s': trailing comma",
				  spec);
			goto error;
		}
		continue;
bad:
		errprintf(err, "bad target '%.*s' in '%s' (expected 'all', an "
			  "engine id, or a range like 1-3)", (int)(end - p), p,
			  spec);
		goto error;
	}
	qsort(t->ids, t->n, sizeof(int64_t), cmp_id);
	for (size_t i = j = 0; i < t->n; i++)
		if (j == 0 || t->ids[j - 1] != t->ids[i])
			t->ids[j++] = t->ids[i];
	t->n = j;
	return 0;
error:
	targets_clear(t);
	return -1;
}

/* Free a target set. */
void
targets_clear(struct targets *t)
{
	free(t->ids);
	memset(t, 0, sizeof(*t));
}

/* Format ascending ids as "0-3" or "0,2-3". */
char *
targets_format(const int64_t *ids, size_t n, char *buf, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < n;) {
		size_t j = i;
		char part[48];
		int k;

		while (j + 1 < n && ids[j + 1] == ids[j] + 1)
			j++;
		if (j == i)
			k = snprintf(part, sizeof(part), "%s%lld",
				     i ? "," : "", (long long)ids[i]);
		else
			k = snprintf(part, sizeof(part), "%s%lld-%lld",
				     i ? "," : "", (long long)ids[i],
				     (long long)ids[j]);
		/* Keep room for "..." only while more parts follow. */
		if (k < 0 || len + (size_t)k + (j + 1 < n ? 4 : 1) > size) {
			if (len + 4 <= size)
				memcpy(buf + len, "...", 4);
			return buf;
		}
		memcpy(buf + len, part, (size_t)k + 1);
		len += (size_t)k;
		i = j + 1;
	}
	return buf;
}
