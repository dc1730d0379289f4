/* SPDX-License-Identifier: BSD-3-Clause */
/* client_demo.c - drive a Cohort cluster from C with libcohort.
 *
 *	cohort-client-demo [PROFILE]
 *
 * Runs code on every engine, pushes a float64 array, checks each engine's
 * sum of it, pulls it back, scatters 10 numbers and gathers them again,
 * printing what happens. Exits 0 if everything came back as sent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cohort/client.h"
#include "cohort/kernel.h"

struct tally {
	int replies, ok;
	const void *expect; /* pull: the bytes that must come back */
	size_t expect_len;
};

static void
on_reply(const struct cohort_reply *r, void *arg)
{
	struct tally *t = arg;

	t->replies++;
	if (strcmp(r->status, "ok") != 0) {
		printf("  [%lld] %s: %s\n", (long long)r->engine,
		       r->ename ? r->ename : r->status,
		       r->evalue ? r->evalue : "");
		return;
	}
	if (t->expect != NULL &&
	    (r->len != t->expect_len ||
	     memcmp(r->data, t->expect, r->len) != 0)) {
		printf("  [%lld] pulled value differs\n", (long long)r->engine);
		return;
	}
	t->ok++;
	if (r->result != NULL)
		printf("  [%lld] Out[%lld]: %s\n", (long long)r->engine,
		       (long long)r->execution_count, r->result);
}

/* Encode a 1-d float64 array as one msgpack value (see cohort/kernel.h). */
static void
pack_array(msgpack_sbuffer *sb, const double *v, uint32_t n)
{
	msgpack_sbuffer head;
	msgpack_packer pk;

	msgpack_sbuffer_init(&head);
	msgpack_packer_init(&pk, &head, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "<f8", 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_uint32(&pk, n);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_ext(&pk, head.size + n * sizeof(double),
			 COHORT_EXT_NDARRAY);
	msgpack_pack_ext_body(&pk, head.data, head.size);
	msgpack_pack_ext_body(&pk, v, n * sizeof(double));
	msgpack_sbuffer_destroy(&head);
}

static int
step(const char *what, int rc, struct tally *t, struct cohort_error *err)
{
	if (rc < 0) {
		printf("%s: error: %s\n", what, err->text);
		return 1;
	}
	printf("%s: %d of %d engines ok\n", what, t->ok, t->replies);
	return rc != 0 || t->ok != t->replies || t->replies == 0;
}

int
main(int argc, char **argv)
{
	struct cohort_error err;
	struct cohort_client *c;
	msgpack_sbuffer arr, list;
	msgpack_packer pk;
	double v[1000], total = 0;
	char code[128];
	void *gathered = NULL;
	size_t gathered_len = 0;
	int failed = 0;

	c = cohort_connect(argc > 1 ? argv[1] : NULL, &err);
	if (c == NULL) {
		fprintf(stderr, "cohort-client-demo: %s\n", err.text);
		return 1;
	}
	for (int i = 0; i < 1000; i++) {
		v[i] = i * 0.5;
		total += v[i];
	}
	msgpack_sbuffer_init(&arr);
	pack_array(&arr, v, 1000);

	{
		struct tally t = { 0 };

		failed |= step("execute", cohort_execute(c, NULL,
				"import os; os.getpid()", 0, on_reply, &t,
				&err), &t, &err);
	}
	{
		struct tally t = { 0 };

		failed |= step("push a", cohort_push(c, NULL, "a", arr.data,
				arr.size, on_reply, &t, &err), &t, &err);
	}
	{
		struct tally t = { 0 };

		snprintf(code, sizeof(code), "assert float(a.sum()) == %.1f; "
			 "float(a.sum())", total);
		failed |= step("sum of a", cohort_execute(c, NULL, code, 0,
				on_reply, &t, &err), &t, &err);
	}
	{
		struct tally t = { .expect = arr.data, .expect_len = arr.size };

		failed |= step("pull a", cohort_pull(c, NULL, "a", on_reply,
				&t, &err), &t, &err);
	}
	msgpack_sbuffer_init(&list);
	msgpack_packer_init(&pk, &list, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 10);
	for (int i = 0; i < 10; i++)
		msgpack_pack_int(&pk, i * i);
	{
		struct tally t = { 0 };

		failed |= step("scatter b", cohort_scatter(c, NULL, "b",
				list.data, list.size, on_reply, &t, &err), &t,
				&err);
	}
	{
		struct tally t = { 0 };

		failed |= step("part sizes", cohort_execute(c, NULL, "len(b)",
				0, on_reply, &t, &err), &t, &err);
	}
	{
		struct tally t = { 0 };
		int rc = cohort_gather(c, NULL, "b", &gathered, &gathered_len,
				       on_reply, &t, &err);

		failed |= step("gather b", rc, &t, &err);
		if (rc == 0 && (gathered_len != list.size ||
				memcmp(gathered, list.data, list.size) != 0)) {
			printf("gather b: the gathered list differs\n");
			failed = 1;
		}
	}
	free(gathered);
	msgpack_sbuffer_destroy(&list);
	msgpack_sbuffer_destroy(&arr);
	cohort_disconnect(c);
	printf("%s\n", failed ? "FAILED" : "all steps ok");
	return failed;
}
