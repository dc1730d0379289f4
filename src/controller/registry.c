/* SPDX-License-Identifier: BSD-3-Clause */
/* registry.c - the controller's table of engines and of their MPI jobs.
 *
 * Engine ids are MPI ranks: the first MPI job to register gets ids
 * 0..size-1, and each later job the lowest free block of its size, so the
 * ids of one job are base + rank and never collide with another job's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "log.h"
#include "targets.h"
#include "util.h"

static struct engine **engines; /* indexed by id; NULL where unused */
static size_t nslots;
static struct mpijob *mpijobs;
static size_t nmpijobs;

static const char *const state_names[] = { "idle", "busy", "dead" };

/* "idle", "busy" or "dead". */
const char *
engine_state_name(enum engine_state s)
{
	return state_names[s];
}

/* Start with an empty registry. */
void
registry_init(void)
{
	engines = NULL;
	nslots = 0;
	mpijobs = NULL;
	nmpijobs = 0;
}

static void
engine_free(struct engine *e)
{
	if (e == NULL)
		return;
	free(e->host);
	free(e->kernel);
	free(e->job);
	free(e);
}

/* Free every engine and job record. */
void
registry_free(void)
{
	for (size_t i = 0; i < nslots; i++)
		engine_free(engines[i]);
	free(engines);
	for (size_t i = 0; i < nmpijobs; i++)
		free(mpijobs[i].key);
	free(mpijobs);
	registry_init();
}

static bool
block_is_free(int64_t base, int64_t size)
{
	for (size_t i = 0; i < nmpijobs; i++) {
		const struct mpijob *j = &mpijobs[i];

		if (base < j->base + j->size && j->base < base + size)
			return false;
	}
	return true;
}

static struct mpijob *
mpijob_get(const char *key, int64_t size)
{
	int64_t base = 0;

	for (size_t i = 0; i < nmpijobs; i++)
		if (strcmp(mpijobs[i].key, key) == 0)
			return &mpijobs[i];
	/* Lowest block that no other job's ids overlap; starts are at
	 * other jobs' ends, so this scan is over O(jobs) candidates. */
	for (;;) {
		int64_t next = -1;

		if (block_is_free(base, size))
			break;
		for (size_t i = 0; i < nmpijobs; i++) {
			int64_t end = mpijobs[i].base + mpijobs[i].size;

			if (end > base && (next < 0 || end < next))
				next = end;
		}
		base = next;
	}
	mpijobs = xrealloc(mpijobs, (nmpijobs + 1) * sizeof(*mpijobs));
	mpijobs[nmpijobs].key = xstrdup(key);
	mpijobs[nmpijobs].base = base;
	mpijobs[nmpijobs].size = size;
	return &mpijobs[nmpijobs++];
}

/* Register an engine from its hello message. */
struct engine *
registry_add(struct peer *p, const struct msg *hello, struct cohort_error *err)
{
	static const enum msg_field need[] = { F_RANK, F_SIZE, F_PID, F_HOST,
					       F_KERNEL, F_JOB };
	struct mpijob *job;
	struct engine *e;
	char *key;
	int64_t id;

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!msg_has(hello, need[i]))
			return errprintf(err, "engine hello lacks a field "
					 "(rank, size, pid, host, kernel, "
					 "job)"), NULL;
	if (hello->size < 1 || hello->size > TARGETS_MAX_ID ||
	    hello->rank < 0 || hello->rank >= hello->size)
		return errprintf(err, "engine hello has rank %lld of size "
				 "%lld", (long long)hello->rank,
				 (long long)hello->size), NULL;
	key = str_dup(hello->job);
	job = mpijob_get(key, hello->size);
	free(key);
	if (job->size != hello->size)
		return errprintf(err, "engine of MPI job %s says size %lld, "
				 "its job has %lld", job->key,
				 (long long)hello->size,
				 (long long)job->size), NULL;
	id = job->base + hello->rank;
	if (id >= TARGETS_MAX_ID)
		return errprintf(err, "engine id %lld is beyond the limit",
				 (long long)id), NULL;
	if ((size_t)id >= nslots) {
		size_t n = (size_t)id + 1 > nslots * 2 ? (size_t)id + 1
						       : nslots * 2;

		engines = xrealloc(engines, n * sizeof(*engines));
		memset(engines + nslots, 0, (n - nslots) * sizeof(*engines));
		nslots = n;
	}
	if (engines[id] != NULL && engines[id]->state != ENGINE_DEAD)
		return errprintf(err, "engine %lld (rank %lld of job %s) is "
				 "already registered", (long long)id,
				 (long long)hello->rank, job->key), NULL;
	engine_free(engines[id]);
	e = xcalloc(1, sizeof(*e));
	e->id = id;
	e->rank = hello->rank;
	e->size = hello->size;
	e->pid = hello->pid;
	e->host = str_dup(hello->host);
	e->kernel = str_dup(hello->kernel);
	e->job = xstrdup(job->key);
	e->state = ENGINE_IDLE;
	e->registered = now_monotonic();
	e->peer = p;
	engines[id] = e;
	log_info("engine %lld registered: rank %lld/%lld of job %s, pid %lld "
		 "on %s, %s kernel", (long long)id, (long long)e->rank,
		 (long long)e->size, e->job, (long long)e->pid, e->host,
		 e->kernel);
	return e;
}

/* Mark an engine dead. */
void
registry_engine_lost(struct engine *e)
{
	e->state = ENGINE_DEAD;
	e->peer = NULL;
	e->ntasks = 0;
}

/* Engine by id, or NULL. */
struct engine *
registry_get(int64_t id)
{
	if (id < 0 || (size_t)id >= nslots)
		return NULL;
	return engines[id];
}

/* Ids of live engines, ascending. */
size_t
registry_live_ids(int64_t **ids)
{
	size_t n = 0;

	*ids = xcalloc(nslots ? nslots : 1, sizeof(int64_t));
	for (size_t i = 0; i < nslots; i++)
		if (engines[i] != NULL && engines[i]->state != ENGINE_DEAD)
			(*ids)[n++] = (int64_t)i;
	return n;
}

/* Registered engines, and how many are live. */
size_t
registry_count(size_t *live)
{
	size_t n = 0, l = 0;

	for (size_t i = 0; i < nslots; i++) {
		if (engines[i] == NULL)
			continue;
		n++;
		l += engines[i]->state != ENGINE_DEAD;
	}
	if (live != NULL)
		*live = l;
	return n;
}

/* Describe the registered ids compactly. */
const char *
registry_describe(char *buf, size_t size)
{
	int64_t *ids = xcalloc(nslots ? nslots : 1, sizeof(int64_t));
	size_t n = 0;

	for (size_t i = 0; i < nslots; i++)
		if (engines[i] != NULL)
			ids[n++] = (int64_t)i;
	if (n == 0)
		snprintf(buf, size, "none");
	else
		targets_format(ids, n, buf, size);
	free(ids);
	return buf;
}

/* Send the registry as an engines message. */
void
registry_send_list(struct peer *client, int64_t request_id)
{
	struct msg_engine *list = xcalloc(nslots ? nslots : 1, sizeof(*list));
	double now = now_monotonic();
	size_t n = 0;
	struct msg m;

	for (size_t i = 0; i < nslots; i++) {
		const struct engine *e = engines[i];

		if (e == NULL)
			continue;
		list[n].id = e->id;
		list[n].rank = e->rank;
		list[n].size = e->size;
		list[n].pid = e->pid;
		list[n].host = (struct str){ e->host, strlen(e->host) };
		list[n].kernel = (struct str){ e->kernel, strlen(e->kernel) };
		list[n].job = (struct str){ e->job, strlen(e->job) };
		list[n].state = (struct str){
			engine_state_name(e->state),
			strlen(engine_state_name(e->state))
		};
		list[n].uptime = now - e->registered;
		n++;
	}
	msg_init(&m, MSG_ENGINES);
	msg_set_int(&m, F_ID, request_id);
	msg_set_engines(&m, list, n);
	conn_send(client->conn, &m, NULL);
	free(list);
}
