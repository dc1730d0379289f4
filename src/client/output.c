/* SPDX-License-Identifier: BSD-3-Clause */
/* output.c - rendering of per-engine replies as text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "targets.h"
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
	dst->escalation = dup_or_null(src->escalation);
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
	free(r->escalation);
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
	if (n > 1)
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

/* Colour escapes, empty unless stdout is a terminal and NO_COLOR is unset
 * (https://no-color.org). */
static const char *
colour(const char *code)
{
	static int on = -1;

	if (on < 0) {
		const char *nc = getenv("NO_COLOR");

		on = isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0');
	}
	return on ? code : "";
}
#define C_DIM colour("\033[2m")
#define C_RED colour("\033[31m")
#define C_GREEN colour("\033[32m")
#define C_OFF colour("\033[0m")

/* Copy text with "<cell-N>" made "<cell>": engines whose execution counts
 * differ still raise the same error from the same code. */
static char *
without_cell_numbers(const char *text)
{
	char *out = xstrdup(text), *w = out;

	for (const char *p = text; *p != '\0';) {
		if (strncmp(p, "<cell-", 6) == 0) {
			const char *q = p + 6;

			while (*q >= '0' && *q <= '9')
				q++;
			if (*q == '>' && q > p + 6) {
				memcpy(w, "<cell>", 6);
				w += 6;
				p = q + 1;
				continue;
			}
		}
		*w++ = *p++;
	}
	*w = '\0';
	return out;
}

/* What a reply shows, as one comparable string: replies with equal keys
 * are printed once with their engine set. Execution counts are left out
 * (they drift apart once requests target different engines). */
static char *
reply_key(const struct px_reply *r, bool with_output)
{
	char *tb = without_cell_numbers(r->traceback ? r->traceback : "");
	char *key = xasprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s"
			      "\x1f%s",
			      r->escalation ? r->escalation : "",
			      r->status, with_output ? r->out : "",
			      with_output ? r->err : "",
			      r->result ? r->result : "\x1e",
			      r->ename ? r->ename : "",
			      r->evalue ? r->evalue : "", tb,
			      r->result ? "" : "-");

	free(tb);
	return key;
}

static void
print_one(const struct px_reply *r, const char *who, bool with_output,
	  bool same_count)
{
	char prefix[320];

	if (with_output) {
		snprintf(prefix, sizeof(prefix), "%s[stdout:%s]%s ", C_DIM,
			 who, C_OFF);
		print_lines(prefix, r->out);
		snprintf(prefix, sizeof(prefix), "%s[stderr:%s]%s ", C_RED,
			 who, C_OFF);
		print_lines(prefix, r->err);
	}
	if (r->result != NULL && same_count)
		printf("%s[%s] Out[%lld]:%s %s\n", C_GREEN, who,
		       (long long)r->count, C_OFF, r->result);
	else if (r->result != NULL)
		printf("%s[%s] Out:%s %s\n", C_GREEN, who, C_OFF, r->result);
	if (r->escalation != NULL && strcmp(r->status, "timeout") != 0)
		printf("%s[%s] timed out:%s answered after the %s\n", C_RED,
		       who, C_OFF, strcmp(r->escalation, "interrupt") == 0
		       ? "interrupt" : strcmp(r->escalation, "term") == 0
		       ? "SIGTERM" : "SIGKILL");
	if (strcmp(r->status, "ok") == 0)
		return;
	if (strcmp(r->status, "error") == 0) {
		printf("%s[%s] %s:%s %s\n", C_RED, who,
		       r->ename ? r->ename : "Error", C_OFF,
		       r->evalue ? r->evalue : "");
		if (r->traceback != NULL)
			print_lines("    ", r->traceback);
	} else {
		printf("%s[%s] %s:%s %s\n", C_RED, who, r->status, C_OFF,
		       r->evalue ? r->evalue : "");
	}
}

/* Print replies as text in engine order; with collapse, replies that
 * show the same thing print once, headed by their engine set ("0-3"). */
void
output_px_text(const struct px_reply *r, size_t n, bool with_output,
	       bool collapse)
{
	char **keys = xcalloc(n ? n : 1, sizeof(char *));
	int64_t *ids = xcalloc(n ? n : 1, sizeof(int64_t));
	bool *done = xcalloc(n ? n : 1, sizeof(bool));
	char who[256];

	for (size_t i = 0; i < n; i++)
		keys[i] = reply_key(&r[i], with_output);
	for (size_t i = 0; i < n; i++) {
		bool same_count = true;
		size_t k = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < n; j++) {
			if (done[j] || (j != i && (!collapse ||
					strcmp(keys[i], keys[j]) != 0)))
				continue;
			done[j] = true;
			ids[k++] = r[j].engine;
			same_count = same_count && r[j].count == r[i].count;
		}
		targets_format(ids, k, who, sizeof(who));
		print_one(&r[i], who, with_output, same_count);
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(ids);
	free(done);
	fflush(stdout);
}

static bool
same_text(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Print "[ids] result" once per distinct result, engines in order, then
 * the failures, also grouped: for answers that are plain text (where,
 * interrupt, data movement). */
void
output_grouped(const struct px_reply *r, size_t n)
{
	int64_t *ids = xcalloc(n ? n : 1, sizeof(int64_t));
	bool *done = xcalloc(n ? n : 1, sizeof(bool));
	char who[256];

	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		if (done[i] || r[i].result == NULL)
			continue;
		for (size_t j = i; j < n; j++) {
			if (done[j] || r[j].result == NULL ||
			    strcmp(r[i].result, r[j].result) != 0)
				continue;
			done[j] = true;
			ids[k++] = r[j].engine;
		}
		targets_format(ids, k, who, sizeof(who));
		printf("[%s] %s\n", who, r[i].result);
	}
	/* Failures too, grouped when engines fail the same way. */
	for (size_t i = 0; i < n; i++) {
		const char *what = strcmp(r[i].status, "error") == 0
					   ? (r[i].ename ? r[i].ename : "Error")
					   : r[i].status;
		size_t k = 0;

		if (done[i] || strcmp(r[i].status, "ok") == 0)
			continue;
		for (size_t j = i; j < n; j++) {
			if (done[j] || strcmp(r[j].status, r[i].status) != 0 ||
			    !same_text(r[j].ename, r[i].ename) ||
			    !same_text(r[j].evalue, r[i].evalue))
				continue;
			done[j] = true;
			ids[k++] = r[j].engine;
		}
		targets_format(ids, k, who, sizeof(who));
		printf("[%s] %s: %s\n", who, what,
		       r[i].evalue ? r[i].evalue : "");
		if (r[i].traceback != NULL)
			print_lines("    ", r[i].traceback);
	}
	free(ids);
	free(done);
	fflush(stdout);
}

/* Live output: complete lines print at once with their engine prefix;
 * a partial line waits for its end (or for stream_flush()). */
struct live_line {
	int64_t engine;
	bool err;
	char *buf;
	size_t len;
};

static struct live_line *live;
static size_t nlive;

void progress_clear(void);

static void
live_print(const struct live_line *l, const char *text, size_t len)
{
	progress_clear();
	printf("%s[%s:%lld]%s %.*s\n", l->err ? C_RED : C_DIM,
	       l->err ? "stderr" : "stdout", (long long)l->engine, C_OFF,
	       (int)len, text);
}

/* A cohort_stream_fn that prints lines as they complete. */
void
stream_print(int64_t engine, const char *name, const char *text, size_t len,
	     void *arg)
{
	bool err = strcmp(name, "stderr") == 0;
	struct live_line *l = NULL;

	(void)arg;
	for (size_t i = 0; i < nlive; i++)
		if (live[i].engine == engine && live[i].err == err)
			l = &live[i];
	if (l == NULL) {
		live = xrealloc(live, (nlive + 1) * sizeof(*live));
		l = &live[nlive++];
		memset(l, 0, sizeof(*l));
		l->engine = engine;
		l->err = err;
	}
	l->buf = xrealloc(l->buf, l->len + len + 1);
	memcpy(l->buf + l->len, text, len);
	l->len += len;
	for (;;) {
		char *nl = memchr(l->buf, '\n', l->len);
		size_t k;

		if (nl == NULL)
			break;
		k = (size_t)(nl - l->buf);
		live_print(l, l->buf, k);
		memmove(l->buf, nl + 1, l->len - k - 1);
		l->len -= k + 1;
	}
	fflush(stdout);
}

static bool progress_shown;

/* A cohort_progress_fn: after a second, "3/4 engines done" on a terminal's
 * stderr, redrawn in place. */
void
progress_print(size_t done, size_t total, double elapsed, void *arg)
{
	(void)arg;
	if (elapsed < 1.0 || !isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[K%zu/%zu engines done (%.0f s)", done, total,
		elapsed);
	fflush(stderr);
	progress_shown = true;
}

/* Erase the progress line, if one is shown. */
void
progress_clear(void)
{
	if (!progress_shown)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	progress_shown = false;
}

/* Print what is left of partial lines and forget them. */
void
stream_flush(void)
{
	for (size_t i = 0; i < nlive; i++) {
		if (live[i].len > 0)
			live_print(&live[i], live[i].buf, live[i].len);
		free(live[i].buf);
	}
	free(live);
	live = NULL;
	nlive = 0;
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

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t k;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 4;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

/* A JSON string of text; bytes that are not UTF-8 (output of C code can
 * be anything) become U+FFFD, so no reply is ever lost from the JSON. */
static json_t *
json_text(const char *text)
{
	size_t n = strlen(text), o = 0;
	json_t *j = json_stringn(text, n);
	char *fixed;

	if (j != NULL)
		return j;
	fixed = xmalloc(n * 3 + 1);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len((const unsigned char *)text + i, n - i);

		if (k == 0) {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(fixed + o, text + i, k);
			o += k;
			i += k;
		}
	}
	j = json_stringn(fixed, o);
	free(fixed);
	return j ? j : json_string("");
}

/* One reply as a JSON object. */
json_t *
output_reply_json(const struct px_reply *r)
{
	json_t *e = json_pack("{s:I, s:I, s:s, s:o, s:o, s:o, s:I, s:f}",
			      "id", (json_int_t)r->engine,
			      "rank", (json_int_t)r->rank,
			      "status", r->status,
			      "stdout", json_text(r->out),
			      "stderr", json_text(r->err),
			      "result", r->result ? json_text(r->result)
						  : json_null(),
			      "execution_count", (json_int_t)r->count,
			      "elapsed", r->elapsed);

	json_object_set_new(e, "escalation", r->escalation
			    ? json_string(r->escalation) : json_null());
	if (strcmp(r->status, "ok") != 0)
		json_object_set_new(e, "error", json_pack(
			"{s:o, s:o, s:o}",
			"ename", json_text(r->ename ? r->ename : r->status),
			"evalue", json_text(r->evalue ? r->evalue : ""),
			"traceback", json_text(r->traceback ? r->traceback
							    : "")));
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
