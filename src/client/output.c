/* SPDX-License-Identifier: BSD-3-Clause */
/* output.c - rendering of per-engine replies as text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "util.h"

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Copy a reply out of the callback's borrowed storage. */
void
px_reply_copy(struct px_reply *dst, const struct cohort_reply *src)
{
	dst->engine = src->engine;
	dst->rank = src->rank;
	dst->status = xstrdup(src->status);
	dst->out = xstrdup(src->out ? src->out : "");
	dst->err = xstrdup(src->err ? src->err : "");
	dst->result = dup_or_null(src->result);
	dst->ename = dup_or_null(src->ename);
	dst->evalue = dup_or_null(src->evalue);
	dst->traceback = dup_or_null(src->traceback);
	dst->count = src->execution_count;
	dst->elapsed = src->elapsed;
	dst->data = NULL;
	dst->len = 0;
	if (src->data != NULL) {
		dst->data = xmalloc(src->len);
		memcpy(dst->data, src->data, src->len);
		dst->len = src->len;
	}
}

/* Append a reply to a collection. */
void
collect_reply(const struct cohort_reply *r, void *arg)
{
	struct px_collect *c = arg;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->r = xrealloc(c->r, c->cap * sizeof(*c->r));
	}
	px_reply_copy(&c->r[c->n++], r);
}

/* Free a collection. */
void
collect_clear(struct px_collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		px_reply_clear(&c->r[i]);
	free(c->r);
	memset(c, 0, sizeof(*c));
}

/* Free a reply's strings. */
void
px_reply_clear(struct px_reply *r)
{
	free(r->status);
	free(r->out);
	free(r->err);
	free(r->result);
	free(r->ename);
	free(r->evalue);
	free(r->traceback);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

static int
cmp_reply(const void *a, const void *b)
{
	const struct px_reply *x = a, *y = b;

	return (x->engine > y->engine) - (x->engine < y->engine);
}

/* Order replies by engine id. */
void
px_replies_sort(struct px_reply *r, size_t n)
{
	qsort(r, n, sizeof(*r), cmp_reply);
}

/* Print each line of text with a prefix. */
static void
print_lines(const char *prefix, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		printf("%s%.*s\n", prefix, (int)len, p);
		p += len + (nl != NULL);
	}
}

/* Print replies as text, in the order given. */
void
output_px_text(const struct px_reply *r, size_t n)
{
	char prefix[64];

	for (size_t i = 0; i < n; i++) {
		long long id = (long long)r[i].engine;

		snprintf(prefix, sizeof(prefix), "[stdout:%lld] ", id);
		print_lines(prefix, r[i].out);
		snprintf(prefix, sizeof(prefix), "[stderr:%lld] ", id);
		print_lines(prefix, r[i].err);
		if (r[i].result != NULL)
			printf("[%lld] Out[%lld]: %s\n", id,
			       (long long)r[i].count, r[i].result);
		output_failures(&r[i], 1);
	}
	fflush(stdout);
}

/* Print each failed reply's error with its traceback. */
size_t
output_failures(const struct px_reply *r, size_t n)
{
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		long long id = (long long)r[i].engine;

		if (strcmp(r[i].status, "ok") == 0)
			continue;
		failed++;
		if (strcmp(r[i].status, "error") == 0) {
			printf("[%lld] %s: %s\n", id,
			       r[i].ename ? r[i].ename : "Error",
			       r[i].evalue ? r[i].evalue : "");
			if (r[i].traceback != NULL)
				print_lines("    ", r[i].traceback);
		} else {
			printf("[%lld] %s: %s\n", id, r[i].status,
			       r[i].evalue ? r[i].evalue : "");
		}
	}
	return failed;
}

/* One reply as a JSON object. */
json_t *
output_reply_json(const struct px_reply *r)
{
	json_t *e = json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:I, s:f}",
			      "id", (json_int_t)r->engine,
			      "rank", (json_int_t)r->rank,
			      "status", r->status,
			      "stdout", r->out,
			      "stderr", r->err,
			      "result", r->result ? json_string(r->result)
						  : json_null(),
			      "execution_count", (json_int_t)r->count,
			      "elapsed", r->elapsed);

	if (strcmp(r->status, "ok") != 0)
		json_object_set_new(e, "error", json_pack(
			"{s:s, s:s, s:s}",
			"ename", r->ename ? r->ename : r->status,
			"evalue", r->evalue ? r->evalue : "",
			"traceback", r->traceback ? r->traceback : ""));
	else
		json_object_set_new(e, "error", json_null());
	return e;
}

/* "out.npy" for engine 2 becomes "out.2.npy"; "out" becomes "out.2". */
char *
output_engine_path(const char *path, int64_t engine)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(path, '.');

	if (dot == NULL || (slash != NULL && dot < slash) || dot == path ||
	    (slash != NULL && dot == slash + 1))
		return xasprintf("%s.%lld", path, (long long)engine);
	return xasprintf("%.*s.%lld%s", (int)(dot - path), path,
			 (long long)engine, dot);
}

/* Print replies as one JSON document. */
void
output_px_json(const struct px_reply *r, size_t n)
{
	json_t *arr = json_array(), *doc;
	bool all_ok = true;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(r[i].status, "ok") != 0)
			all_ok = false;
		json_array_append_new(arr, output_reply_json(&r[i]));
	}
	doc = json_pack("{s:b, s:o}", "ok", all_ok, "engines", arr);
	json_dumpf(doc, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(doc);
	fflush(stdout);
}
