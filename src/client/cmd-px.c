/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-px.c - cohort px: run code on engines and print their results. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static int cmd_px_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_px_entry = {
	.name = "px",
	.alias = "execute",
	.usage = "[--targets T] [--timeout S] [--on-timeout interrupt|term|kill]\n"
		 "                 [--grace S] [--json] [--no-stream] [--no-collapse]\n"
		 "                 [--nonblock] [--allow-partial-collectives] CODE",
	.summary = "run code on engines and print each engine's output",
	.help =
	"  -t, --targets T   engines to run on: all (default), 0,2, 1-3, ...\n"
	"  --timeout S       give up on engines still running after S seconds\n"
	"                    (they are reported as 'timeout'; their code runs on)\n"
	"  --on-timeout STEP what to do with engines still running at the\n"
	"                    timeout, in escalating steps --grace apart:\n"
	"                    interrupt (KeyboardInterrupt), term (then SIGTERM\n"
	"                    to the engine process), kill (then SIGKILL); each\n"
	"                    late engine's report says which step ended it\n"
	"  --grace S         seconds between the steps (default 2)\n"
	"  --interrupt-on-timeout\n"
	"                    the same as --on-timeout interrupt\n"
	"  --json            print one JSON document instead of text\n"
	"  --no-stream       print output at the end, not as it is written\n"
	"  --no-collapse     print every engine separately, even when they agree\n"
	"  --nonblock        print the job id and return at once; see\n"
	"                    'cohort result ID' and 'cohort jobs'\n"
	"  --allow-partial-collectives\n"
	"                    when only some ranks of an MPI job are targeted,\n"
	"                    allow MPI calls on communicators that include the\n"
	"                    others (refused by default: they would hang)\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"CODE '-' reads the code from standard input. Output is printed per\n"
	"engine in engine order: [stdout:N], [stderr:N], the value of a\n"
	"trailing expression as [N] Out[K]: ..., and errors with their\n"
	"traceback. Engines that print the same thing are shown once, with\n"
	"their engine set ([0-3] Out[5]: 187.45). Output lines stream as the\n"
	"engines write them. Ctrl-C interrupts the engines' code (each reports\n"
	"KeyboardInterrupt); a second Ctrl-C within a second stops waiting.\n"
	"Colour only on a terminal, and never with NO_COLOR set. On a\n"
	"terminal, a request that runs over a second shows 'N/M engines done'.\n"
	"The exit status is 0 only if every engine succeeded.\n",
	.exec = cmd_px_exec,
};

static char *
read_all(FILE *f)
{
	size_t n = 0, cap = 4096;
	char *buf = xmalloc(cap);

	for (;;) {
		size_t k = fread(buf + n, 1, cap - n - 1, f);

		n += k;
		if (k == 0)
			break;
		if (n + 1 == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[n] = '\0';
	return buf;
}

static int
cmd_px_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-stream", no_argument, NULL, 'S' },
		{ "no-collapse", no_argument, NULL, 'C' },
		{ "interrupt-on-timeout", no_argument, NULL, 'I' },
		{ "on-timeout", required_argument, NULL, 'O' },
		{ "grace", required_argument, NULL, 'G' },
		{ "nonblock", no_argument, NULL, 'N' },
		{ "allow-partial-collectives", no_argument, NULL, 'P' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cohort_request rq = { .op = "execute" };
	struct px_collect col = { 0 };
	struct cohort_client *c;
	struct cohort_error err;
	char *code = NULL, *end;
	int json = 0, stream = 1, collapse = 1, ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			rq.targets = optarg;
			break;
		case 'T':
			rq.timeout = strtod(optarg, &end);
			if (*end != '\0' || !(rq.timeout > 0))
				return cli_usage_error(&cmd_px_entry,
						       "bad --timeout '%s'",
						       optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'S':
			stream = 0;
			break;
		case 'C':
			collapse = 0;
			break;
		case 'I':
			rq.interrupt_on_timeout = 1;
			break;
		case 'O':
			if (strcmp(optarg, "interrupt") != 0 &&
			    strcmp(optarg, "term") != 0 &&
			    strcmp(optarg, "kill") != 0)
				return cli_usage_error(&cmd_px_entry,
						       "bad --on-timeout '%s' "
						       "(interrupt, term or "
						       "kill)", optarg);
			rq.on_timeout = optarg;
			break;
		case 'G':
			rq.grace = strtod(optarg, &end);
			if (*end != '\0' || !(rq.grace > 0 && rq.grace < 1e6))
				return cli_usage_error(&cmd_px_entry,
						       "bad --grace '%s'",
						       optarg);
			break;
		case 'N':
			rq.nonblock = 1;
			break;
		case 'P':
			rq.allow_partial_collectives = 1;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_px_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_px_entry, "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&cmd_px_entry, "expected one CODE "
				       "argument");
	if ((rq.on_timeout != NULL || rq.interrupt_on_timeout ||
	     rq.grace > 0) && !(rq.timeout > 0))
		return cli_usage_error(&cmd_px_entry, "--on-timeout, "
				       "--interrupt-on-timeout and --grace "
				       "need --timeout");
	if (strcmp(argv[optind], "-") == 0)
		code = read_all(stdin);
	rq.code = code ? code : argv[optind];
	c = cli_connect(ctx);
	if (c == NULL) {
		free(code);
		return 1;
	}
	if (json || rq.nonblock)
		stream = 0;
	if (stream) {
		cohort_set_stream(c, stream_print, NULL);
		cohort_set_progress(c, progress_print, NULL);
	}
	cohort_set_interruptible(c, 1);
	rc = cohort_request(c, &rq, collect_reply, &col, &err);
	free(code);
	if (stream) {
		progress_clear();
		stream_flush();
	}
	if (rq.nonblock && rc >= 0) {
		if (json)
			printf("{\"job\": %lld}\n",
			       (long long)cohort_last_job(c));
		else
			printf("job %lld submitted; see: cohort result %lld\n",
			       (long long)cohort_last_job(c),
			       (long long)cohort_last_job(c));
		cohort_disconnect(c);
		collect_clear(&col);
		return 0;
	}
	cohort_disconnect(c);
	px_replies_sort(col.r, col.n);
	if (json)
		output_px_json(col.r, col.n);
	else
		output_px_text(col.r, col.n, !stream, collapse);
	if (rc < 0) {
		collect_clear(&col);
		return cli_error("%s", err.text);
	}
	collect_clear(&col);
	return rc == 0 ? 0 : 1;
}
