/* octet_train.c: `octet-train SPEC.json [--device cpu|cuda|auto] [--checkpoint-dir DIR]
 * [--resume] [--threads N] [--memory-limit BYTES]`, which runs one fine-tuning job from a spec
 * file without a server, through the same runner octetd uses (server/train/trainer.h), on the
 * engine's thread policy (kernels/threads.h: --threads N, else the CPUs this process may use).
 * `-h` / `--help` prints the usage for people on stdout and exits 0.
 *
 * Admission: before anything is allocated, the spec's memory is estimated (train/estimate.h:
 * the peak of the device's ledger, from the shapes alone) and a job whose peak exceeds what
 * the device can give (its free memory, or --memory-limit when smaller, which also caps the
 * run's allocations as trainer_options.device_mem_limit does) is refused with the figures and
 * the field to change (trainer_admit), exit 2, in milliseconds instead of after gigabytes of
 * allocations. An estimate that fails leaves the verdict to the run, which fails the same way.
 *
 * Standard output gets JSON lines only: {"event": "step", ...} every training.log_every
 * optimizer steps, {"event": "epoch", ...} after every epoch's evaluation, and at the end
 * {"event": "memory", ...} with the memory figures; human-readable progress goes to stderr.
 * Exit status: 0 when the job finished; 2 for a bad spec or command line, including a spec
 * file that cannot be read (missing, a directory, no permission) or parsed, a field that
 * does not fit the data or the device, a job whose estimated peak the device cannot give
 * (code "out_of_memory"), and a --checkpoint-dir that cannot be created or written, which is
 * found before training starts (one JSON line {"error": {"code", "message", "field"}} naming
 * the field); 1 for a failure while running (the same JSON error line, with the code of the
 * failure). */
#include "config.h"
#define LOG_PREFIX "octet-train"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "fileio.h"
#include "threads.h"
#include "train/estimate.h"
#include "train/spec.h"
#include "train/trainer.h"

#define SPEC_MAX_BYTES (1u << 20)
#define OCTET_STR_(x) #x
#define OCTET_STR(x) OCTET_STR_(x)

typedef struct cli {
    const char *spec_path, *device, *checkpoint_dir;
    int resume;
    int threads; /* 0: the default (the CPUs available) */
    size_t memory_limit;       /* --memory-limit; 0: none */
} cli;

/* Prints one JSON object as a line on stdout and flushes, so a pipe sees it at once. */
static void emit(const char *event, json_t *o)
{
    if (!o)
        return;
    if (event) {
        json_t *line = json_pack("{ss}", "event", event);
        json_object_update(line, o);
        json_decref(o);
        o = line;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(8));
    if (s) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    json_decref(o);
}

static int fail(const octet_err *e, int status, int exit_code)
{
    json_t *err = json_pack("{ss ss ss}", "code", trainer_error_code(status), "message",
                            e->message[0] ? e->message : octet_strerror(status), "field", e->field);
    emit(NULL, json_pack("{so}", "error", err));
    return exit_code;
}

#define USAGE "octet-train SPEC.json [--device cpu|cuda|auto] [--checkpoint-dir DIR] [--resume] [--threads N]" \
    " [--memory-limit BYTES]"

static int usage_error(const char *msg)
{
    octet_err e;
    octet_fail(&e, OCTET_ERR_ARG, "", "%s; usage: " USAGE, msg);
    return fail(&e, OCTET_ERR_ARG, 2);
}

/* -h / --help: the usage for people, on stdout. */
static void print_help(void)
{
    fputs("usage: " USAGE "\n"
          "\n"
          "Runs one fine-tuning job from a job spec (JSON) without a server, through the same\n"
          "runner octetd uses, and prints its progress as JSON lines on stdout: a \"step\" event\n"
          "every training.log_every optimizer steps, an \"epoch\" event after each evaluation and\n"
          "a \"memory\" event at the end. Human-readable progress goes to stderr.\n"
          "\n"
          "options:\n"
          "  --device cpu|cuda|auto  the device to train on (default: the spec's training.device)\n"
          "  --checkpoint-dir DIR    write a checkpoint (weights, optimizer and trainer state)\n"
          "                          into DIR after every epoch; created if needed\n"
          "  --resume                continue from the newest checkpoint in --checkpoint-dir\n"
          "  --threads N             CPU threads of the job (default: the CPUs this process may\n"
          "                          use; OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are overridden);\n"
          "                          a CPU run gives the same bits at any count, given the spec and seed\n"
          "  --memory-limit BYTES    cap the job's device memory at BYTES (a positive integer);\n"
          "                          admission compares the estimated peak with it\n"
          "  -h, --help              print this help and exit\n"
          "\n"
          "Before anything is allocated the spec's peak memory is estimated; a job whose peak the\n"
          "device (or --memory-limit) cannot give is refused with the figures and the field to change.\n"
          "\n"
          "exit status: 0 when the job finished; 2 for a bad spec or command line, or a job that does\n"
          "not fit the device (one JSON line {\"error\": {\"code\", \"message\", \"field\"}} naming\n"
          "the field); 1 for a failure while running (the same JSON error line).\n",
          stdout);
}

/* A positive decimal byte count into *out; -1 for anything else (a sign, a suffix, 0, more
 * than size_t holds). */
static int parse_bytes(const char *v, size_t *out)
{
    if (v[0] < '0' || v[0] > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n == 0 || n > SIZE_MAX)
        return -1;
    *out = (size_t)n;
    return 0;
}

/* Returns 0, the exit status of a usage error (already printed), or -1 after -h / --help. */
static int parse_args(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) /* help wins over everything else on the line */
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            print_help();
            return -1;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--device") && i + 1 < argc)
            c->device = argv[++i];
        else if (!strcmp(a, "--checkpoint-dir") && i + 1 < argc)
            c->checkpoint_dir = argv[++i];
        else if (!strcmp(a, "--resume"))
            c->resume = 1;
        else if (!strcmp(a, "--threads") && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || n < 0 || n > OCTET_THREADS_MAX)
                return usage_error("--threads must be 0 (the default) to " OCTET_STR(OCTET_THREADS_MAX));
            c->threads = (int)n;
        } else if (!strcmp(a, "--memory-limit") && i + 1 < argc) {
            if (parse_bytes(argv[++i], &c->memory_limit))
                return usage_error("--memory-limit takes a positive number of bytes");
        } else if (a[0] == '-' || c->spec_path)
            return usage_error(a[0] == '-' ? "unknown option or missing value" : "more than one spec file");
        else
            c->spec_path = a;
    }
    if (!c->spec_path)
        return usage_error("no spec file");
    if (c->resume && !c->checkpoint_dir)
        return usage_error("--resume needs --checkpoint-dir");
    if (c->device && strcmp(c->device, "cpu") && strcmp(c->device, "cuda") && strcmp(c->device, "auto"))
        return usage_error("--device must be cpu, cuda or auto");
    return 0;
}

/* ------------------------------------------------------------------ callbacks */

static int on_start(void *user, const trainer_info *i)
{
    log_info("%s on %s: %lld parameters, %lld train / %lld eval samples, %d labels, %lld steps/epoch, "
             "%lld steps, from epoch %d", i->arch, i->device, (long long)i->n_parameters, (long long)i->n_train,
             (long long)i->n_eval, i->num_labels, (long long)i->steps_per_epoch, (long long)i->total_steps,
             i->start_epoch);
    return 0;
}

static int on_step(void *user, const trainer_step_log *s)
{
    emit("step", trainer_step_json(s));
    return 0;
}

static int on_epoch(void *user, const trainer_epoch_metrics *m)
{
    json_t *o = trainer_epoch_json(m);
    if (m->restored)
        json_object_set_new(o, "restored", json_true());
    emit("epoch", o);
    return 0;
}

static int on_memory(void *user, const trainer_memory *mem, int final)
{
    if (final)
        emit("memory", trainer_memory_json(mem));
    return 0;
}

/* ------------------------------------------------------------------ main */

static int load_spec(const char *path, job_spec *spec, octet_err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = octet_read_file(path, SPEC_MAX_BYTES, "spec", &text, &len, e);
    if (rc == OCTET_OK)
        rc = spec_parse_text(text, 0, spec, e);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    cli c;
    int bad = parse_args(argc, argv, &c);
    if (bad)
        return bad < 0 ? 0 : bad;
    octet_err e;
    octet_err_clear(&e);
    job_spec *spec = malloc(sizeof *spec);
    if (!spec)
        return fail(&e, OCTET_ERR_NOMEM, 1);
    int rc = load_spec(c.spec_path, spec, &e);
    if (rc != OCTET_OK) { /* missing, unreadable, not a file, not JSON: all a bad spec */
        free(spec);
        return fail(&e, rc, rc == OCTET_ERR_NOMEM ? 1 : 2);
    }
    trainer_options opt;
    memset(&opt, 0, sizeof opt);
    opt.threads = octet_threads_set(c.threads); /* logs the choice; trainer_train applies it again */
    opt.device = c.device;
    opt.checkpoint_dir = c.checkpoint_dir;
    opt.resume = c.resume ? TRAINER_RESUME_REQUIRED : TRAINER_RESUME_NO;
    opt.cb.on_start = on_start;
    opt.cb.on_step = on_step;
    opt.cb.on_epoch = on_epoch;
    opt.cb.on_memory = on_memory;
    opt.device_mem_limit = c.memory_limit;
    trainer_estimate est;
    octet_err ee;
    octet_err_clear(&ee);
    if (trainer_estimate_spec(spec, &opt, &est, &ee) != OCTET_OK) {
        log_info("no estimate (%s: %s); the run decides", ee.field, ee.message);
    } else if ((rc = trainer_admit(&est, est.device_free, &e)) != OCTET_OK) {
        free(spec);
        return fail(&e, rc, 2);
    } else {
        log_info("estimated peak %.1f MiB of the %s device's %.1f MiB free", est.peak_bytes / 1048576.0, est.device,
                 est.device_free / 1048576.0);
    }
    trainer *t = NULL;
    trainer_result res;
    rc = trainer_open(spec, &opt, &t, &e);
    free(spec);
    /* a field that does not fit the data or the device is the spec's fault; a checkpoint
     * directory that cannot be written (checked before training) the command line's */
    if (rc != OCTET_OK)
        return fail(&e, rc, rc == OCTET_ERR_ARG || !strcmp(e.field, "checkpoint_dir") ? 2 : 1);
    rc = trainer_train(t, &res, &e);
    trainer_close(t);
    if (rc != OCTET_OK)
        return fail(&e, rc, 1);
    log_info("done: %d epochs, %lld steps in %.1f s", res.epochs_done, (long long)res.global_step, res.seconds);
    return 0;
}
