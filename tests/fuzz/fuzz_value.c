/* SPDX-License-Identifier: BSD-3-Clause */
/* fuzz_value.c - libFuzzer target: the client-side value functions.
 *
 * The first input byte picks a mode (its value modulo 3); the rest is the
 * data:
 *   0  an encoded (msgpack) value, as pulled from an engine: value_format,
 *      value_to_json, value_split into 3 parts, value_concat of the value
 *      with itself;
 *   1  the bytes of a .npy file: written to a per-process temporary file
 *      and read with value_from_arg("@<tmp>.npy");
 *   2  a command-line JSON literal for value_from_arg (NUL-terminated at
 *      the first NUL; inputs starting with '@' are skipped so the target
 *      never opens arbitrary files), and the same text as a value name
 *      for value_name_ok.
 * None may crash or leak. Whatever the encoders produce (value_from_arg's
 * output, the parts of a split, a concatenation) must in turn be a
 * well-formed value, and it is fed back through mode 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "fuzz_common.h"
#include "value.h"

#define NPARTS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char malformed[] = "<malformed value";

static int
well_formed(const void *data, size_t len)
{
	char *s = value_format(data, len, 200);
	int ok = strncmp(s, malformed, sizeof(malformed) - 1) != 0;

	free(s);
	return ok;
}

/* A per-process temporary file name with the given suffix. */
static const char *
tmp_path(const char *suffix)
{
	static char path[256];
	const char *dir = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/cohort-fuzz-value-%ld%s",
		 dir && *dir ? dir : "/tmp", (long)getpid(), suffix);
	return path;
}

static void file_round_trip(const void *data, size_t len, const char *suffix);

/* Mode 0; depth > 0 for values the library made itself. */
static void
values(const void *data, size_t len, int depth)
{
	struct cohort_error err;
	msgpack_sbuffer parts[NPARTS], cat;
	const void *in[2] = { data, data };
	size_t lens[2] = { len, len };
	char *s;
	json_t *j;
	int rc;

	s = value_format(data, len, 200);
	FUZZ_CHECK(s != NULL, "value_format returned NULL");
	FUZZ_CHECK(strlen(s) <= 200 ||
		   strncmp(s, malformed, sizeof(malformed) - 1) == 0,
		   "value_format gave %zu chars for at most 200", strlen(s));
	if (depth > 0)
		FUZZ_CHECK(strncmp(s, malformed, sizeof(malformed) - 1) != 0,
			   "the library made a malformed value: %s", s);
	free(s);
	s = value_format(data, len, 0);
	free(s);

	err.text[0] = '\0';
	j = value_to_json(data, len, &err);
	if (j) {
		s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
		free(s);
		json_decref(j);
	} else {
		FUZZ_CHECK(err.text[0] != '\0', "value_to_json: no reason");
	}

	for (int i = 0; i < NPARTS; i++)
		msgpack_sbuffer_init(&parts[i]);
	err.text[0] = '\0';
	rc = value_split(data, len, NPARTS, parts, &err);
	FUZZ_CHECK(rc == 0 || err.text[0] != '\0', "value_split: no reason");
	for (int i = 0; i < NPARTS; i++) {
		if (rc == 0) {
			FUZZ_CHECK(well_formed(parts[i].data, parts[i].size),
				   "split part %d is malformed", i);
			if (depth < 1)
				values(parts[i].data, parts[i].size, depth + 1);
		}
		msgpack_sbuffer_destroy(&parts[i]);
	}

	msgpack_sbuffer_init(&cat);
	err.text[0] = '\0';
	rc = value_concat(in, lens, 2, &cat, &err);
	FUZZ_CHECK(rc == 0 || err.text[0] != '\0', "value_concat: no reason");
	if (rc == 0) {
		FUZZ_CHECK(well_formed(cat.data, cat.size),
			   "concatenation is malformed");
		if (depth < 1)
			values(cat.data, cat.size, depth + 1);
	}
	msgpack_sbuffer_destroy(&cat);

	if (depth == 0) {
		file_round_trip(data, len, ".npy");
		file_round_trip(data, len, ".json");
	}
}

/* Pull to a file, push it back: value_write_file() then value_from_arg()
 * must give the same value, as JSON (a .json file turns an array into a
 * dict and bytes into a base64 dict, which value_to_json makes of them
 * too) and, for .npy, as text. Reading back may refuse what JSON cannot
 * nest deeply enough; it may not change a value it accepts. */
static void
file_round_trip(const void *data, size_t len, const char *suffix)
{
	const char *path = tmp_path(suffix);
	struct cohort_error err;
	char arg[300], *s0, *s1;
	msgpack_sbuffer sb;
	json_t *j0, *j1;

	if (value_write_file(data, len, path, &err) < 0) {
		unlink(path);
		return;
	}
	snprintf(arg, sizeof(arg), "@%s", path);
	msgpack_sbuffer_init(&sb);
	if (value_from_arg(arg, &sb, &err) < 0) {
		FUZZ_CHECK(strcmp(suffix, ".npy") != 0,
			   "a written .npy file does not read back: %s",
			   err.text);
		goto out;
	}
	j0 = value_to_json(data, len, NULL);
	j1 = value_to_json(sb.data, sb.size, NULL);
	/* both may lack a JSON form (an empty array of a huge shape) */
	FUZZ_CHECK(j0 == NULL ? j1 == NULL : j1 != NULL && json_equal(j0, j1),
		   "%s round trip changed the value", suffix);
	json_decref(j0);
	json_decref(j1);
	if (strcmp(suffix, ".npy") == 0) {
		s0 = value_format(data, len, 0);
		s1 = value_format(sb.data, sb.size, 0);
		FUZZ_CHECK(strcmp(s0, s1) == 0, ".npy round trip: %s became %s",
			   s0, s1);
		free(s0);
		free(s1);
	}
out:
	msgpack_sbuffer_destroy(&sb);
	unlink(path);
}

/* value_from_arg(arg), then its output through mode 0. */
static void
from_arg(const char *arg)
{
	struct cohort_error err;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	err.text[0] = '\0';
	if (value_from_arg(arg, &sb, &err) == 0) {
		FUZZ_CHECK(sb.size > 0, "value_from_arg made nothing");
		values(sb.data, sb.size, 1);
	} else {
		FUZZ_CHECK(err.text[0] != '\0', "value_from_arg: no reason");
		FUZZ_CHECK(sb.size == 0, "value_from_arg failed but wrote %zu "
			   "bytes", sb.size);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void
npy(const uint8_t *data, size_t len)
{
	const char *path = tmp_path(".npy");
	char arg[300];
	FILE *fp;

	fp = fopen(path, "wb");
	FUZZ_CHECK(fp != NULL, "cannot create %s", path);
	FUZZ_CHECK((len == 0 || fwrite(data, 1, len, fp) == len) &&
		   fclose(fp) == 0, "cannot write %s", path);
	snprintf(arg, sizeof(arg), "@%s", path);
	from_arg(arg);
	unlink(path);
}

static void
json_literal(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);

	FUZZ_CHECK(s != NULL, "out of memory");
	memcpy(s, data, len);
	s[len] = '\0';
	if (s[0] != '@')
		from_arg(s);
	(void)value_name_ok(s); /* push/pull names come from the same argv */
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		values(data + 1, size - 1, 0);
		break;
	case 1:
		npy(data + 1, size - 1);
		break;
	default:
		json_literal(data + 1, size - 1);
		break;
	}
	return 0;
}
