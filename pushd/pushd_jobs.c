/*
 * The jobs of mdm-pushd in memory: one per enrollment, in a list and a
 * hash by enrollment id, with a count per state that the loop reads
 * instead of walking the list. Nothing here talks to Redis or APNs.
 */
#include "pushd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned
hash_id(const char *s)
{
    unsigned h = 2166136261u;

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 16777619u;
    }
    return h % PUSHD_JOBS_HASH;
}

/* The JOB_FINAL jobs are also in a list of their own: the loop writes
 * them every turn, and walking all jobs for them cost more than the rest
 * of the loop. */
static void
final_link(pushd_jobs_t *t, pushd_job_t *j)
{
    j->fprev = NULL;
    j->fnext = t->fhead;
    if (t->fhead) {
        t->fhead->fprev = j;
    }
    t->fhead = j;
}

static void
final_unlink(pushd_jobs_t *t, pushd_job_t *j)
{
    if (j->fprev) {
        j->fprev->fnext = j->fnext;
    } else {
        t->fhead = j->fnext;
    }
    if (j->fnext) {
        j->fnext->fprev = j->fprev;
    }
    j->fnext = j->fprev = NULL;
}

static void
state_count(pushd_jobs_t *t, pushd_job_state_t s, int by)
{
    switch (s) {
    case JOB_NEW:
        t->nnew += by;
        break;
    case JOB_INFLIGHT:
        t->ninflight += by;
        break;
    case JOB_WAIT:
        t->nwaiting += by;
        break;
    case JOB_FINAL:
        t->nfinal += by;
        break;
    case JOB_READY:
        t->nready += by;
        break;
    case JOB_PARKED:
        break;
    }
}

pushd_job_t *
pushd_jobs_find(const pushd_jobs_t *t, const char *id)
{
    pushd_job_t *j;

    for (j = t->hash[hash_id(id)]; j; j = j->hnext) {
        if (strcmp(j->id, id) == 0) {
            return j;
        }
    }
    return NULL;
}

pushd_job_t *
pushd_jobs_add(pushd_jobs_t *t, const char *id, const char *entry)
{
    pushd_job_t *j = calloc(1, sizeof(*j));

    if (j == NULL || (j->id = strdup(id)) == NULL ||
        pushd_ids_add(&j->cur, entry) != 0) {
        if (j) {
            free(j->id);
            free(j);
        }
        return NULL;
    }
    j->state = JOB_NEW;
    t->nnew++;
    j->next = t->head;
    if (t->head) {
        t->head->prev = j;
    }
    t->head = j;
    j->hnext = t->hash[hash_id(j->id)];
    t->hash[hash_id(j->id)] = j;
    t->n++;
    return j;
}

void
pushd_jobs_set(pushd_jobs_t *t, pushd_job_t *j, pushd_job_state_t s)
{
    if (j->state == s) {
        return;
    }
    state_count(t, j->state, -1);
    if (j->state == JOB_WAIT && j->cert) {
        j->cert->waiting--;
    }
    if (j->state == JOB_FINAL) {
        final_unlink(t, j);
    } else if (s == JOB_FINAL) {
        final_link(t, j);
    }
    j->state = s;
    state_count(t, s, 1);
    if (s == JOB_WAIT && j->cert) {
        j->cert->waiting++;
    }
}

void
pushd_jobs_remove(pushd_jobs_t *t, pushd_job_t *j)
{
    pushd_job_t **p;

    for (p = &t->hash[hash_id(j->id)]; *p; p = &(*p)->hnext) {
        if (*p == j) {
            *p = j->hnext;
            break;
        }
    }
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        t->head = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    state_count(t, j->state, -1);
    if (j->state == JOB_WAIT && j->cert) {
        j->cert->waiting--;
    }
    if (j->state == JOB_FINAL) {
        final_unlink(t, j);
    }
    t->n--;
    free(j->cur.v);
    free(j->more.v);
    free(j->id);
    free(j->rec_key);
    free(j->token);
    free(j->magic);
    free(j->topic);
    free(j);
}

int
pushd_ids_add(pushd_ids_t *l, const char *entry)
{
    char(*n)[48];
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], entry) == 0) {
            return 0;
        }
    }
    if (l->n == l->cap) {
        n = realloc(l->v, (l->cap ? l->cap * 2 : 2) * sizeof(*n));
        if (n == NULL) {
            return -1;
        }
        l->v = n;
        l->cap = l->cap ? l->cap * 2 : 2;
    }
    snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", entry);
    return 0;
}

int
pushd_ids_has(const pushd_ids_t *l, const char *entry)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], entry) == 0) {
            return 1;
        }
    }
    return 0;
}
