/* sweep_grid.h: a sweep's grid of spec paths to lists of values, checked and expanded into
 * one spec per combination (sweep_grid.c). The handlers of /sweeps (sweeps.c) parse and admit
 * each combination; nothing here allocates beyond the JSON it returns. */
#ifndef OCTET_SWEEP_GRID_H
#define OCTET_SWEEP_GRID_H

#include <jansson.h>
#include <stddef.h>
#include "status.h"

#define SWEEP_GRID_MAX_PATHS 32
#define SWEEP_PATH_MAX 96

typedef struct sweep_grid {
    json_t *obj;                                /* borrowed: the request's "grid" */
    int n_paths;
    const char *path[SWEEP_GRID_MAX_PATHS];     /* borrowed from obj's keys */
    json_t *values[SWEEP_GRID_MAX_PATHS];       /* borrowed: each path's list */
    size_t count[SWEEP_GRID_MAX_PATHS];
    size_t combinations;                        /* the product of the counts */
} sweep_grid;

/* Checks grid g (an object of dotted spec paths to non-empty lists) into *out. Returns
 * OCTET_OK; OCTET_ERR_ARG with e naming the path at fault ("grid.optimizer.lrr") and what is
 * allowed; OCTET_ERR_MISMATCH (field "grid") when it makes more than max_combinations. */
int sweep_grid_read(json_t *g, long long max_combinations, sweep_grid *out, octet_err *e);

/* The value indices of combination c (0 <= c < combinations; the last path varies fastest). */
void sweep_grid_indices(const sweep_grid *g, size_t c, size_t *idx);

/* Combination c's spec from base (a new reference; NULL when out of memory) and its grid
 * values as an object of path to value (*values, a new reference). */
json_t *sweep_grid_combination(const sweep_grid *g, const json_t *base, size_t c, json_t **values);

#endif
