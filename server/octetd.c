/* octetd.c: the octet daemon's main: command-line options, the data directory and database,
 * the job workers, the HTTP server, and a bounded, clean shutdown on SIGINT or SIGTERM.
 *
 * Start-up order: parse options, create the data directory and the database's directory, open
 * the store (which applies the schema migrations), probe CUDA once, put back in the queue the
 * jobs this host left running (a crash or a kill: they resume from their checkpoints), start
 * the job workers (one per CUDA device by default, else one), start the HTTP server, and print
 * one line "octetd VERSION listening on http://ADDR:PORT/" on stdout (with the port the kernel
 * chose when --port 0), which scripts and the API tests read. Signals are blocked in every
 * thread octetd starts and taken synchronously with sigtimedwait() here (one that reaches a
 * library's own thread is recorded by a handler and seen within 0.2 s), so shutdown runs in
 * plain code: refuse
 * new jobs, suspend every running job at its next optimizer step (a checkpoint, back to the
 * queue) and wait up to --grace seconds for the workers, end the event streams, stop the HTTP
 * server, close the store, exit 0. Workers still busy after the grace are left to the next
 * start-up (their jobs resume from their last checkpoints); the process exits 0 all the same.
 * Exit status 1 means start-up failed (the reason is logged), 2 a usage error. The web page
 * and the schema migrations come from the source tree for an uninstalled build and from
 * $(pkgdatadir) for the installed binary (default_data_root), unless --web-dir / --schema-dir
 * say otherwise. */
#define LOG_PREFIX "octetd"
#include "config.h"
#include "api/api.h"
#include "device.h"
#include "jobs/jobs.h"
#include "log.h"
#include "threads.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef OCTET_SRCDIR
#define OCTET_SRCDIR "."
#endif
#ifndef OCTET_BINDIR
#define OCTET_BINDIR "/usr/local/bin"
#endif
#ifndef OCTET_PKGDATADIR
#define OCTET_PKGDATADIR "/usr/local/share/octet"
#endif

/* Where the web page and the schema migrations are by default: the installed copies under
 * $(pkgdatadir) when this process is the installed $(bindir)/octetd, else the source tree the
 * binary was built from (an uninstalled build, e.g. ./setup.sh serve). Decided by comparing
 * /proc/self/exe with the real path of $(bindir)/octetd; anything that cannot be resolved
 * means "uninstalled". */
static const char *default_data_root(void)
{
    char self[PATH_MAX], installed[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return OCTET_SRCDIR;
    self[n] = '\0';
    if (!realpath(OCTET_BINDIR "/octetd", installed))
        return OCTET_SRCDIR;
    return strcmp(self, installed) == 0 ? OCTET_PKGDATADIR : OCTET_SRCDIR;
}

#define DEFAULT_MAX_UPLOAD ((size_t)64 << 20)
#define DEFAULT_MAX_QUEUED 1000
#define DEFAULT_MAX_SWEEP 256
#define DEFAULT_GRACE_S 30
#define DEFAULT_HTTP_NICE 15   /* a nice-0 thread gets ~97% of a core beside a busy HTTP thread */
#define MAX_CRASHES 3          /* a job that octetd stopped under this often is not resumed again */

typedef struct options {
    const char *listen;
    unsigned port;
    const char *db;
    const char *data_dir;
    const char *web_dir;
    const char *js_dir;
    const char *schema_dir;
    const char *token;
    size_t max_body;
    size_t max_upload;
    int workers;               /* 0: one per CUDA device, else 1 */
    int threads;               /* CPU threads per job; 0: the CPUs available / workers */
    unsigned http_threads;
    int http_nice;
    unsigned max_connections, max_per_client;
    long long max_queued;
    long long max_sweep;
    size_t memory_limit;
    unsigned grace;
} options;

static void usage(FILE *f, const char *root)
{
    fprintf(f,
            "usage: octetd [options]\n"
            "  --listen ADDR      numeric IPv4/IPv6 address to bind (default 127.0.0.1)\n"
            "  --port N           TCP port (default 8080; 0 picks a free one and prints it)\n"
            "  --db PATH          SQLite database file (default DATA_DIR/octet.db)\n"
            "  --data-dir DIR     where datasets, checkpoints and the default database live (default data)\n"
            "  --web-dir DIR      static files of the web page (default %s/web)\n"
            "  --js-dir DIR       served read-only at /javascript/: the page's chart library\n"
            "                     (default /usr/share/javascript, Debian's libjs-* packages; \"\" for none)\n"
            "  --schema-dir DIR   SQL migrations (default %s/schema)\n"
            "  --token TOKEN      bearer token required for writes (default $OCTET_TOKEN; none if unset)\n"
            "  --max-body BYTES   largest request body accepted (default %u)\n"
            "  --max-upload BYTES largest dataset upload accepted (default %zu)\n"
            "  --workers N        job workers (default: one per CUDA device, else 1)\n"
            "  --threads N        CPU threads per job (default: the CPUs available / workers, at least 1);\n"
            "                     a CPU job's results are the same bits at any count\n"
            "  --http-threads N   threads answering HTTP requests (default 4)\n"
            "  --http-nice N      how much lower than training the HTTP threads run, as a nice\n"
            "                     increment 0..19 (default %d), under batch scheduling: where the\n"
            "                     CPUs are short, training keeps its pace and requests wait; 0 for\n"
            "                     equal shares\n"
            "  --max-connections N  open connections in all past which new ones are closed (default %u)\n"
            "  --max-connections-per-client N  the same for one client address (default %u)\n"
            "  --max-queued N     queued jobs past which submissions get 503 (default %d)\n"
            "  --max-sweep N      the most jobs one sweep may make (default %d)\n"
            "  --memory-limit BYTES  the most memory a job's device may give it; jobs whose estimated\n"
            "                     peak is larger are refused (default: what the device has free)\n"
            "  --grace SECONDS    how long a stop waits for running jobs to checkpoint (default %d)\n"
            "  --help, --version\n",
            root, root, HTTP_DEFAULT_MAX_BODY, DEFAULT_MAX_UPLOAD, DEFAULT_HTTP_NICE, HTTP_DEFAULT_MAX_CONNECTIONS,
            HTTP_DEFAULT_MAX_PER_CLIENT, DEFAULT_MAX_QUEUED, DEFAULT_MAX_SWEEP, DEFAULT_GRACE_S);
}

/* Parses an unsigned decimal number into *out; 0 on junk or overflow past max. */
static int parse_unsigned(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max)
        return 0;
    *out = v;
    return 1;
}

/* Fills o from argv. Returns -1 to go on, or the exit status (0 after --help/--version, 2 on a
 * usage error). */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},     {"port", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},         {"data-dir", required_argument, NULL, 'D'},
        {"web-dir", required_argument, NULL, 'w'},    {"schema-dir", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 't'},      {"max-body", required_argument, NULL, 'm'},
        {"max-upload", required_argument, NULL, 'u'}, {"workers", required_argument, NULL, 'W'},
        {"http-threads", required_argument, NULL, 'T'}, {"max-queued", required_argument, NULL, 'Q'},
        {"grace", required_argument, NULL, 'g'},      {"max-sweep", required_argument, NULL, 'S'},
        {"memory-limit", required_argument, NULL, 'M'},
        {"js-dir", required_argument, NULL, 'j'},     {"threads", required_argument, NULL, 'n'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-connections-per-client", required_argument, NULL, 'c'},
        {"http-nice", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},             {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static char web[PATH_MAX], schema[PATH_MAX];
    const char *root = default_data_root();
    snprintf(web, sizeof web, "%s/web", root);
    snprintf(schema, sizeof schema, "%s/schema", root);
    *o = (options){.listen = "127.0.0.1", .port = 8080, .data_dir = "data", .web_dir = web,
                   .js_dir = "/usr/share/javascript",
                   .schema_dir = schema, .token = getenv("OCTET_TOKEN"), .max_upload = DEFAULT_MAX_UPLOAD,
                   .http_threads = 4, .http_nice = DEFAULT_HTTP_NICE, .max_queued = DEFAULT_MAX_QUEUED, .max_sweep = DEFAULT_MAX_SWEEP,
                   .grace = DEFAULT_GRACE_S};
    unsigned long long v;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'p':
            if (!parse_unsigned(optarg, 65535, &v)) {
                fprintf(stderr, "octetd: --port must be 0..65535, got '%s'\n", optarg);
                return 2;
            }
            o->port = (unsigned)v;
            break;
        case 'd': o->db = optarg; break;
        case 'D': o->data_dir = optarg; break;
        case 'w': o->web_dir = optarg; break;
        case 'j': o->js_dir = optarg; break;
        case 's': o->schema_dir = optarg; break;
        case 't': o->token = optarg; break;
        case 'm':
            if (!parse_unsigned(optarg, (unsigned long long)1 << 40, &v) || v == 0) {
                fprintf(stderr, "octetd: --max-body must be a positive number of bytes, got '%s'\n", optarg);
                return 2;
            }
            o->max_body = (size_t)v;
            break;
        case 'u':
            if (!parse_unsigned(optarg, (unsigned long long)1 << 40, &v) || v == 0) {
                fprintf(stderr, "octetd: --max-upload must be a positive number of bytes, got '%s'\n", optarg);
                return 2;
            }
            o->max_upload = (size_t)v;
            break;
        case 'W':
            if (!parse_unsigned(optarg, 64, &v) || v == 0) {
                fprintf(stderr, "octetd: --workers must be 1..64, got '%s'\n", optarg);
                return 2;
            }
            o->workers = (int)v;
            break;
        case 'T':
            if (!parse_unsigned(optarg, 256, &v) || v == 0) {
                fprintf(stderr, "octetd: --http-threads must be 1..256, got '%s'\n", optarg);
                return 2;
            }
            o->http_threads = (unsigned)v;
            break;
        case 'N':
            if (!parse_unsigned(optarg, 19, &v)) {
                fprintf(stderr, "octetd: --http-nice must be 0..19, got '%s'\n", optarg);
                return 2;
            }
            o->http_nice = (int)v;
            break;
        case 'C':
        case 'c':
            if (!parse_unsigned(optarg, 1000000, &v) || v == 0) {
                fprintf(stderr, "octetd: --%s must be 1..1000000, got '%s'\n",
                        c == 'C' ? "max-connections" : "max-connections-per-client", optarg);
                return 2;
            }
            *(c == 'C' ? &o->max_connections : &o->max_per_client) = (unsigned)v;
            break;
        case 'Q':
            if (!parse_unsigned(optarg, 1000000000ULL, &v)) {
                fprintf(stderr, "octetd: --max-queued must be 0..1000000000, got '%s'\n", optarg);
                return 2;
            }
            o->max_queued = (long long)v;
            break;
        case 'S':
            if (!parse_unsigned(optarg, 100000, &v) || v == 0) {
                fprintf(stderr, "octetd: --max-sweep must be 1..100000, got '%s'\n", optarg);
                return 2;
            }
            o->max_sweep = (long long)v;
            break;
        case 'M':
            if (!parse_unsigned(optarg, (unsigned long long)1 << 50, &v) || v == 0) {
                fprintf(stderr, "octetd: --memory-limit must be a positive number of bytes, got '%s'\n", optarg);
                return 2;
            }
            o->memory_limit = (size_t)v;
            break;
        case 'g':
            if (!parse_unsigned(optarg, 86400, &v)) {
                fprintf(stderr, "octetd: --grace must be 0..86400 seconds, got '%s'\n", optarg);
                return 2;
            }
            o->grace = (unsigned)v;
            break;
        case 'n':
            if (!parse_unsigned(optarg, OCTET_THREADS_MAX, &v)) {
                fprintf(stderr, "octetd: --threads must be 0..%d (0: the default), got '%s'\n", OCTET_THREADS_MAX,
                        optarg);
                return 2;
            }
            o->threads = (int)v;
            break;
        case 'h': usage(stdout, root); return 0;
        case 'V': printf("octetd %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr, root); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "octetd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* mkdir -p. Fails (returns -1, errno set) when a component cannot be created. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        char saved = *p;
        if (saved != '/' && saved != '\0')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -1;
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

/* Creates the data directory and the database's directory. */
static int prepare_dirs(const options *o, const char *db)
{
    if (make_dirs(o->data_dir)) {
        log_err("cannot create the data directory %s: %s", o->data_dir, strerror(errno));
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", db);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (make_dirs(dir)) {
            log_err("cannot create the database directory %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* True when `listen` is a loopback address (127.0.0.0/8 or ::1): only this host can connect. */
static int is_loopback(const char *listen)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, listen, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, listen, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* This host's name in jobs.host, which start-up recovery matches. */
static void host_name(char *buf, size_t cap)
{
    if (gethostname(buf, cap) || !buf[0])
        snprintf(buf, cap, "localhost");
    buf[cap - 1] = '\0';
}

/* Puts back in the queue the jobs this host left running. */
static int recover_jobs(store *st, const char *host)
{
    int requeued = 0, failed = 0;
    octet_err e;
    octet_err_clear(&e);
    if (store_jobs_recover(st, host, MAX_CRASHES, &requeued, &failed, &e) != OCTET_OK) {
        log_err("cannot recover the jobs left running: %s", e.message);
        return -1;
    }
    if (requeued || failed)
        log_info("%d interrupted jobs back in the queue (they resume from their checkpoints), %d failed after %d "
                 "interruptions", requeued, failed, MAX_CRASHES);
    return 0;
}

/* Everything serve() starts, so one function can take it down in order. */
typedef struct daemon_parts {
    api_ctx app;
    jobs_hub *hub;
    jobs_service *jobs;
    http_server *srv;
    int api_ready;
} daemon_parts;

static void take_down(daemon_parts *d, unsigned grace)
{
    d->app.stopping = 1;
    int workers_done = d->jobs ? jobs_stop(d->jobs, (double)grace) == 0 : 1;
    if (d->hub)
        jobs_hub_shutdown(d->hub);
    if (d->api_ready && api_events_drain(&d->app, 2.0))
        log_warn("event streams still open after 2 s; closing them");
    http_stop(d->srv);
    if (!workers_done) { /* threads still train: leave without freeing what they use */
        log_warn("exiting with jobs still running; they resume at the next start");
        fflush(NULL);
        _exit(0);
    }
    jobs_free(d->jobs);
    jobs_hub_free(d->hub);
    if (d->api_ready)
        api_done(&d->app);
    store_close(d->app.st);
}

/* Starts the workers and the HTTP server on top of the open store. */
static int start_parts(const options *o, const char *db, const char *data_real, daemon_parts *d, octet_err *e)
{
    api_ctx *app = &d->app;
    char host[256];
    host_name(host, sizeof host);
    int devices = device_cuda_count();
    app->cuda_devices = app->cuda_usable ? devices : 0;
    app->workers = o->workers ? o->workers : (app->cuda_devices ? app->cuda_devices : 1);
    int cores = octet_threads_available(), threads = octet_threads_share(cores, app->workers, o->threads);
    log_info("threads: %d worker%s x %d CPU thread%s per job, %d CPUs available%s", app->workers,
             app->workers == 1 ? "" : "s", threads, threads == 1 ? "" : "s", cores,
             o->threads ? " (--threads)" : app->workers > cores ? " (more workers than CPUs: one thread each)" : "");
    log_info("HTTP: %u threads at nice +%d%s beside training", o->http_threads, o->http_nice,
             o->http_nice > 0 ? ", batch scheduling," : "");
    if (recover_jobs(app->st, host))
        return OCTET_ERR_DB;
    int rc = api_init(app, e);
    d->api_ready = rc == OCTET_OK;
    d->hub = rc == OCTET_OK ? jobs_hub_new(15.0) : NULL;
    if (rc == OCTET_OK && !d->hub)
        rc = octet_fail(e, OCTET_ERR_NOMEM, "", "cannot start the event hub");
    app->hub = d->hub;
    jobs_config jc = {.db_path = db, .data_dir = data_real, .host = host, .workers = app->workers,
                      .cuda_devices = app->cuda_devices, .hub = d->hub, .threads = threads,
                      .memory_limit = app->memory_limit};
    if (rc == OCTET_OK)
        rc = jobs_start(&jc, &d->jobs, e);
    app->jobs = d->jobs;
    http_config cfg = {.listen = o->listen, .port = o->port, .web_dir = o->web_dir, .js_dir = o->js_dir,
                       .token = o->token,
                       .max_body = o->max_body, .max_upload = o->max_upload, .threads = o->http_threads,
                       .max_connections = o->max_connections, .max_per_client = o->max_per_client,
                       .nice = o->http_nice, .routes = api_routes, .app = app, .on_done = api_metrics_request};
    if (rc == OCTET_OK)
        rc = http_start(&cfg, &d->srv, e);
    return rc;
}

/* A stop signal that reached a thread which does not block it: the threads a library starts
 * before main (OpenBLAS's pthreads build starts its pool in a constructor) have the default
 * mask, and a process-directed SIGTERM may be delivered to one of them. The handler only
 * records it; wait_for_stop picks it up within STOP_POLL_NS. */
static volatile sig_atomic_t stray_stop_signal;
#define STOP_POLL_NS 200000000L

static void record_stop_signal(int sig)
{
    stray_stop_signal = sig;
}

/* Waits for SIGINT or SIGTERM, taken synchronously (sigtimedwait) or recorded by
 * record_stop_signal in another thread; returns the signal. Never fails. */
static int wait_for_stop(const sigset_t *stop_signals)
{
    const struct timespec poll = {0, STOP_POLL_NS};
    for (;;) {
        int sig = sigtimedwait(stop_signals, NULL, &poll);
        if (sig > 0)
            return sig;
        if (stray_stop_signal)
            return stray_stop_signal;
    }
}

/* Runs the server until SIGINT or SIGTERM. Returns the exit status. */
static int serve(const options *o, const char *db, const sigset_t *stop_signals)
{
    octet_err e;
    octet_err_clear(&e);
    char data_real[PATH_MAX];
    if (!realpath(o->data_dir, data_real)) {
        log_err("cannot resolve the data directory %s: %s", o->data_dir, strerror(errno));
        return 1;
    }
    daemon_parts d;
    memset(&d, 0, sizeof d);
    api_ctx *app = &d.app;
    app->started = time(NULL);
    app->db_path = db;
    app->data_dir = data_real;
    app->max_queued = o->max_queued;
    app->max_sweep = o->max_sweep;
    app->memory_limit = o->memory_limit;
    app->max_upload = o->max_upload;
    if (store_open(db, o->schema_dir, &app->st, &e) != OCTET_OK) {
        log_err("cannot open the store %s: %s", db, e.message);
        return 1;
    }
    app->cuda_usable = device_cuda_usable(app->cuda_detail, sizeof app->cuda_detail);
    if (start_parts(o, db, data_real, &d, &e) != OCTET_OK) {
        log_err("%s", e.message);
        take_down(&d, o->grace);
        return 1;
    }
    int v6 = strchr(o->listen, ':') != NULL;
    printf("octetd %s listening on http://%s%s%s:%u/\n", PACKAGE_VERSION, v6 ? "[" : "", o->listen, v6 ? "]" : "",
           http_port(d.srv));
    fflush(stdout);
    if (!is_loopback(o->listen) && !(o->token && *o->token))
        log_warn("listening on %s without --token: anyone who can reach this address can submit, cancel and "
                 "delete jobs and upload data; start with --token (or $OCTET_TOKEN) to require one for writes",
                 o->listen);
    log_info("database %s, data %s, web %s, writes %s", db, data_real, o->web_dir,
             o->token && *o->token ? "need the bearer token" : "open");
    if (app->cuda_devices)
        log_info("compute: %d CUDA devices; %d workers", app->cuda_devices, app->workers);
    else
        log_info("compute: the CPU (%s); %d workers", app->cuda_detail, app->workers);
    int sig = wait_for_stop(stop_signals);
    log_info("%s: stopping (running jobs checkpoint and go back to the queue; up to %u s)", strsignal(sig), o->grace);
    take_down(&d, o->grace);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int status = parse_options(argc, argv, &o);
    if (status >= 0)
        return status;
    char db[PATH_MAX];
    if (o.db)
        snprintf(db, sizeof db, "%s", o.db);
    else
        snprintf(db, sizeof db, "%s/octet.db", o.data_dir);
    /* Block the stop signals before any thread exists, so every thread inherits the mask and
     * only sigwait() in serve() receives them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    struct sigaction stray = {.sa_handler = record_stop_signal};
    sigemptyset(&stray.sa_mask);
    sigaction(SIGINT, &stray, NULL);
    sigaction(SIGTERM, &stray, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (prepare_dirs(&o, db))
        return 1;
    return serve(&o, db, &stop_signals);
}
