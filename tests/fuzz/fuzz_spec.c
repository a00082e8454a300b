/* fuzz_spec.c: libFuzzer harness of the job-spec parser (JSON text -> job_spec), the one
 * POST /jobs, POST /estimate, every sweep combination and octet-train run. An accepted spec is
 * also rendered back (spec_to_json), parsed again, and must be accepted again: the normalised
 * spec the API returns is itself a valid spec. */
#include "config.h"
#include <jansson.h>
#include "fuzz_util.h"
#include "train/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    job_spec s;
    octet_err e;
    if (spec_parse_text(text, 0, &s, &e) == OCTET_OK) {
        json_t *back = spec_to_json(&s);
        if (back) {
            job_spec again;
            if (spec_parse(back, 0, &again, &e) != OCTET_OK)
                abort(); /* the normalised spec must parse */
            json_decref(back);
        }
        char label[128];
        spec_model_label(&s, label, sizeof label);
    }
    free(text);
    return 0;
}
