/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-gather.c - cohort gather: concatenate engines' parts of an array. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "value.h"

static int cmd_gather_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_gather_entry = {
	.name = "gather",
	.alias = NULL,
	.usage = "[--targets T] [--json] [--out FILE] NAME",
	.summary = "concatenate the engines' parts of an array, in engine order",
	.help =
	"  -t, --targets T   engines (default all live engines)\n"
	"  --json            print the value as JSON\n"
	"  -o, --out FILE    write the value to FILE (.npy, .json or .bin)\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"The inverse of scatter: each target's NAME (an array or a list) is\n"
	"pulled and the parts are joined along the first axis.\n",
	.exec = cmd_gather_exec,
};

static int
cmd_gather_exec(struct cli_ctx *ctx, int argc, char **argv)
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
	void *data = NULL;
	size_t len = 0;
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
			cmd_help(&cmd_gather_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_gather_entry,
					       "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&cmd_gather_entry, "expected one NAME");
	name = argv[optind];
	if (value_check_name(name, &err) < 0)
		return cli_error("%s", err.text);
	c = cli_connect(ctx);
	if (c == NULL)
		return 1;
	rc = cohort_gather(c, targets, name, &data, &len, collect_reply, &col,
			   &err);
	cohort_disconnect(c);
	if (rc < 0) {
		px_replies_sort(col.r, col.n);
		output_failures(col.r, col.n);
		collect_clear(&col);
		return cli_error("%s", err.text);
	}
	collect_clear(&col);
	if (json) {
		json_t *v = value_to_json(data, len, &err);

		if (v == NULL) {
			rc = cli_error("%s", err.text);
		} else {
			json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
			fputc('\n', stdout);
			json_decref(v);
		}
	} else if (out != NULL) {
		if (value_write_file(data, len, out, &err) < 0)
			rc = cli_error("%s", err.text);
		else
			printf("%s -> %s\n", name, out);
	} else {
		char *text = value_format(data, len, 200);

		printf("%s = %s\n", name, text);
		free(text);
	}
	free(data);
	return rc;
}
