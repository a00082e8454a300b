/* reply_cache.c: rendered replies kept by request key and the store's commit generation
 * (store_generation), so that a read-only view asked again before anything changed is answered
 * without reading the database: the lists and views (GET /jobs, GET /sweeps, GET /sweeps/{id})
 * and each job's document (GET /jobs/{id}).
 *
 * An entry is served as it is while no commit of this process has become visible since it was
 * rendered or last checked, and for at most REPLY_CACHE_TRUST_NS, so that another process's
 * writes to the same file are seen within it. A versioned entry (a job's document, with the
 * job's revision and last event) can also be revalidated: when the generation moved, the caller
 * reads the version, which is cheaper than rendering, and an entry rendered at that version is
 * served again and marked checked at the new generation. A version read before rendering can
 * only be older than the reply, so a stale entry is rebuilt, never served.
 *
 * Lists and views are functions of the database alone (no clocks, no device state), which is
 * what makes the generation a sufficient key. The cache is direct-mapped by a hash of the key,
 * one lock for all slots; a key longer than REPLY_CACHE_KEY_MAX is never cached. Failing to
 * copy (out of memory) only means a miss. */
#include "config.h"
#include "api/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLY_CACHE_SLOTS 512
#define REPLY_CACHE_TRUST_NS 1000000000LL

typedef struct cached_reply {
    char key[REPLY_CACHE_KEY_MAX + 1];
    int versioned;
    reply_version version;
    uint64_t generation; /* read before the reply was rendered or its version last checked */
    int64_t checked_ns;  /* when that was */
    char *text;
    size_t len;
} cached_reply;

static cached_reply slots[REPLY_CACHE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* FNV-1a of the key. */
static cached_reply *slot_of(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return &slots[h % REPLY_CACHE_SLOTS];
}

static int cacheable(const char *key, uint64_t generation)
{
    return generation && strlen(key) <= REPLY_CACHE_KEY_MAX;
}

/* A copy of c's text, or NULL when out of memory; called under the lock. */
static char *entry_copy(const cached_reply *c, size_t *len)
{
    char *copy = malloc(c->len + 1);
    if (copy) {
        memcpy(copy, c->text, c->len + 1);
        *len = c->len;
    }
    return copy;
}

char *reply_cache_get(const char *key, uint64_t generation, size_t *len)
{
    if (!cacheable(key, generation))
        return NULL;
    char *copy = NULL;
    int64_t now = monotonic_ns();
    pthread_mutex_lock(&lock);
    const cached_reply *c = slot_of(key);
    if (c->text && c->generation == generation && now - c->checked_ns < REPLY_CACHE_TRUST_NS && !strcmp(c->key, key))
        copy = entry_copy(c, len);
    pthread_mutex_unlock(&lock);
    return copy;
}

char *reply_cache_revalidate(const char *key, reply_version version, uint64_t generation, size_t *len)
{
    if (!cacheable(key, generation))
        return NULL;
    char *copy = NULL;
    pthread_mutex_lock(&lock);
    cached_reply *c = slot_of(key);
    if (c->text && c->versioned && c->version.revision == version.revision &&
        c->version.last_event == version.last_event && !strcmp(c->key, key) && (copy = entry_copy(c, len)) != NULL) {
        c->generation = generation;
        c->checked_ns = monotonic_ns();
    }
    pthread_mutex_unlock(&lock);
    return copy;
}

static void put(const char *key, int versioned, reply_version version, uint64_t generation, const char *text,
                size_t len)
{
    if (!cacheable(key, generation))
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    int64_t now = monotonic_ns();
    pthread_mutex_lock(&lock);
    cached_reply *c = slot_of(key);
    free(c->text);
    snprintf(c->key, sizeof c->key, "%s", key);
    c->versioned = versioned;
    c->version = version;
    c->generation = generation;
    c->checked_ns = now;
    c->text = copy;
    c->len = len;
    pthread_mutex_unlock(&lock);
}

void reply_cache_put(const char *key, uint64_t generation, const char *text, size_t len)
{
    put(key, 0, (reply_version){0, 0}, generation, text, len);
}

void reply_cache_put_version(const char *key, reply_version version, uint64_t generation, const char *text,
                             size_t len)
{
    put(key, 1, version, generation, text, len);
}

enum MHD_Result api_reply_from_cache(http_request *req, const char *key, uint64_t generation, int *replied)
{
    size_t len = 0;
    char *text = reply_cache_get(key, generation, &len);
    *replied = text != NULL;
    return text ? http_reply_text(req, MHD_HTTP_OK, "application/json", text, len) : MHD_YES;
}

enum MHD_Result api_reply_json_cached(http_request *req, json_t *json, const char *key, uint64_t generation)
{
    char *text = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (!text) /* http_reply_json answers the failure as it does for every reply */
        return http_reply_json(req, MHD_HTTP_OK, json);
    json_decref(json);
    size_t len = strlen(text);
    reply_cache_put(key, generation, text, len);
    return http_reply_text(req, MHD_HTTP_OK, "application/json", text, len);
}
