/* octetd.c: the octet daemon's main: command-line options, the data directory and database,
 * the HTTP server, and a clean shutdown on SIGINT or SIGTERM.
 *
 * Start-up order: parse options, create the data directory and the database's directory, open
 * the store (which applies the schema migrations), probe CUDA once, start the HTTP server, and
 * print one line "octetd VERSION listening on http://ADDR:PORT/" on stdout (with the port the
 * kernel chose when --port 0), which scripts and the API tests read. Signals are blocked in
 * every thread and taken synchronously with sigwait() here, so shutdown runs in plain code:
 * stop the server (finishing the request in flight), close the store, exit 0. Exit status 1
 * means start-up failed (the reason is logged), 2 a usage error. The web page and the schema
 * migrations come from the source tree for an uninstalled build and from $(pkgdatadir) for the
 * installed binary (default_data_root), unless --web-dir / --schema-dir say otherwise. */
#define LOG_PREFIX "octetd"
#include "config.h"
#include "api/api.h"
#include "device.h"
#include "log.h"

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

typedef struct options {
    const char *listen;
    unsigned port;
    const char *db;
    const char *data_dir;
    const char *web_dir;
    const char *schema_dir;
    const char *token;
    size_t max_body;
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
            "  --schema-dir DIR   SQL migrations (default %s/schema)\n"
            "  --token TOKEN      bearer token required for writes (default $OCTET_TOKEN; none if unset)\n"
            "  --max-body BYTES   largest request body accepted (default %u)\n"
            "  --help, --version\n",
            root, root, HTTP_DEFAULT_MAX_BODY);
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
        {"help", no_argument, NULL, 'h'},             {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static char web[PATH_MAX], schema[PATH_MAX];
    const char *root = default_data_root();
    snprintf(web, sizeof web, "%s/web", root);
    snprintf(schema, sizeof schema, "%s/schema", root);
    *o = (options){.listen = "127.0.0.1", .port = 8080, .data_dir = "data", .web_dir = web,
                   .schema_dir = schema, .token = getenv("OCTET_TOKEN")};
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
        case 's': o->schema_dir = optarg; break;
        case 't': o->token = optarg; break;
        case 'm':
            if (!parse_unsigned(optarg, (unsigned long long)1 << 40, &v) || v == 0) {
                fprintf(stderr, "octetd: --max-body must be a positive number of bytes, got '%s'\n", optarg);
                return 2;
            }
            o->max_body = (size_t)v;
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

/* Runs the server until SIGINT or SIGTERM. Returns the exit status. */
static int serve(const options *o, const char *db, const sigset_t *stop_signals)
{
    octet_err e;
    octet_err_clear(&e);
    api_ctx app = {.started = time(NULL)};
    if (store_open(db, o->schema_dir, &app.st, &e) != OCTET_OK) {
        log_err("cannot open the store %s: %s", db, e.message);
        return 1;
    }
    app.cuda_usable = device_cuda_usable(app.cuda_detail, sizeof app.cuda_detail);
    http_config cfg = {.listen = o->listen, .port = o->port, .web_dir = o->web_dir, .token = o->token,
                       .max_body = o->max_body, .routes = api_routes, .app = &app};
    http_server *srv = NULL;
    if (http_start(&cfg, &srv, &e) != OCTET_OK) {
        log_err("%s", e.message);
        store_close(app.st);
        return 1;
    }
    int v6 = strchr(o->listen, ':') != NULL;
    printf("octetd %s listening on http://%s%s%s:%u/\n", PACKAGE_VERSION, v6 ? "[" : "", o->listen, v6 ? "]" : "",
           http_port(srv));
    fflush(stdout);
    log_info("database %s, web %s, writes %s", db, o->web_dir, o->token && *o->token ? "need the bearer token" : "open");
    if (app.cuda_usable)
        log_info("compute: CUDA device 0 is usable; jobs with device auto run there");
    else
        log_info("compute: the CPU (%s)", app.cuda_detail);
    int sig = 0;
    while (sigwait(stop_signals, &sig) != 0)
        ;
    log_info("%s: shutting down", strsignal(sig));
    http_stop(srv);
    store_close(app.st);
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
    signal(SIGPIPE, SIG_IGN);
    if (prepare_dirs(&o, db))
        return 1;
    return serve(&o, db, &stop_signals);
}
