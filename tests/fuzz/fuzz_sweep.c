/* fuzz_sweep.c: libFuzzer harness of a sweep request's grid (POST /sweeps): the input is the
 * request body, {"base": spec, "grid": {path: [values]}}; the grid is checked (at most 64
 * combinations, as a small --max-sweep) and every combination's spec is built from the base and
 * parsed, as the handler does before anything is admitted or stored. */
#include "config.h"
#include <jansson.h>
#include "fuzz_util.h"
#include "api/sweep_grid.h"
#include "train/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!req)
        return 0;
    json_t *base = json_object_get(req, "base");
    sweep_grid g;
    octet_err e;
    if (json_is_object(base) && sweep_grid_read(json_object_get(req, "grid"), 64, &g, &e) == OCTET_OK) {
        for (size_t c = 0; c < g.combinations; c++) {
            json_t *values = NULL;
            json_t *spec = sweep_grid_combination(&g, base, c, &values);
            job_spec parsed;
            if (spec)
                spec_parse(spec, 0, &parsed, &e);
            json_decref(spec);
            json_decref(values);
        }
    }
    json_decref(req);
    return 0;
}
