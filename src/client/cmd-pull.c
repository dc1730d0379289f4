/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-pull.c - cohort pull: fetch a named value from engines. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "value.h"

static int cmd_pull_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_pull_entry = {
	.name = "pull",
	.alias = NULL,
	.usage = "[--targets T] [--json] [--out FILE] NAME",
	.summary = "fetch a named value from engines",
	.help =
	"  -t, --targets T   engines (default all)\n"
	"  --json            print {\"ok\", \"engines\": [{..., \"value\"}]}\n"
	"  -o, --out FILE    write the value to FILE (.npy, .json or .bin);\n"
	"                    with several engines, one file each, the engine\n"
	"                    id inserted before the suffix: out.npy ->\n"
	"                    out.0.npy, out.1.npy, ...\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"Without --out, each engine's value prints as one line, long arrays\n"
	"elided: [2] a = array([0.1, ..., 0.9], shape=(100,), dtype=float64)\n",
	.exec = cmd_pull_exec,
};

/* Print, write or render the pulled values; returns the exit status. */
int pull_output(const char *name, struct px_collect *col, const char *out,
		bool json);

int
pull_output(const char *name, struct px_collect *col, const char *out,
	    bool json)
{
	struct cohort_error err;
	json_t *arr, *doc;
	bool all_ok = true;
	int rc = 0;

	px_replies_sort(col->r, col->n);
	if (json) {
		arr = json_array();
		for (size_t i = 0; i < col->n; i++) {
			json_t *e = output_reply_json(&col->r[i]);
			json_t *v = NULL;

			if (strcmp(col->r[i].status, "ok") != 0)
				all_ok = false;
			if (col->r[i].data != NULL)
				v = value_to_json(col->r[i].data,
						  col->r[i].len, &err);
			json_object_set_new(e, "value", v ? v : json_null());
			json_array_append_new(arr, e);
		}
		doc = json_pack("{s:b, s:o}", "ok", all_ok, "engines", arr);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
		return all_ok ? 0 : 1;
	}
	for (size_t i = 0; i < col->n; i++) {
		struct px_reply *r = &col->r[i];

		if (strcmp(r->status, "ok") != 0) {
			output_failures(r, 1);
			rc = 1;
			continue;
		}
		if (out != NULL) {
			char *path = col->n == 1 ? xstrdup(out)
					 : output_engine_path(out, r->engine);

			if (value_write_file(r->data, r->len, path, &err) < 0)
				rc = cli_error("%s", err.text);
			else
				printf("[%lld] %s -> %s\n",
				       (long long)r->engine, name, path);
			free(path);
		} else {
			char *text = value_format(r->data, r->len, 200);

			printf("[%lld] %s = %s\n", (long long)r->engine, name,
			       text);
			free(text);
		}
	}
	return rc;
}

static int
cmd_pull_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "out", required_argument, NULL, 'o' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *targets = NULL, *out = NULL, *name;
	struct px_collect col = { 0 };
	struct cohort_client *c;
	struct cohort_error err;
	bool json = false;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			targets = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'o':
			out = optarg;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_pull_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_pull_entry, "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&cmd_pull_entry, "expected one NAME");
	name = argv[optind];
	if (value_check_name(name, &err) < 0)
		return cli_error("%s", err.text);
	c = cli_connect(ctx);
	if (c == NULL)
		return 1;
	rc = cohort_pull(c, targets, name, collect_reply, &col, &err);
	cohort_disconnect(c);
	if (rc < 0) {
		collect_clear(&col);
		return cli_error("%s", err.text);
	}
	rc = pull_output(name, &col, out, json);
	collect_clear(&col);
	return rc;
}
