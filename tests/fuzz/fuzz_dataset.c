/* fuzz_dataset.c: libFuzzer harness of the dataset file parsers that uploads (POST /datasets)
 * and dataset.train_file reach: JSONL (one object a line: text, text_pair, label) and CSV. The
 * first byte picks the format (even: .jsonl, odd: .csv) and whether num_labels is fixed; the
 * rest is the file. */
#include "config.h"
#include "fuzz_util.h"
#include "train/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int csv = data[0] & 1, labels = (data[0] >> 1) & 1 ? 2 + (data[0] >> 2) % 6 : 0;
    const char *path = fuzz_file(csv ? "train.csv" : "train.jsonl", data + 1, size - 1);
    octet_dataset train, eval;
    octet_err e;
    memset(&train, 0, sizeof train);
    memset(&eval, 0, sizeof eval);
    if (octet_data_files(path, NULL, labels, &train, &eval, &e) == OCTET_OK) {
        octet_dataset_free(&train);
        octet_dataset_free(&eval);
    }
    return 0;
}
