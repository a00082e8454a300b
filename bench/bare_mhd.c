/* bare_mhd.c: the peer of bench/api.sh: a bare libmicrohttpd server that answers every request
 * with one constant JSON body, started with the daemon options octetd uses (an internal
 * polling thread pool of --threads threads, the same connection timeout), so the ratio of
 * octetd's request rate to this one's is what octet's own work per request costs.
 *
 * Usage: bare_mhd [--threads N] [--nice N]    prints "listening on http://127.0.0.1:PORT/" (a
 * free port) and serves until SIGINT or SIGTERM; --nice lowers each pool thread's priority at its
 * first request and moves it to SCHED_BATCH, as octetd's --http-nice does. Exit status 1 when
 * the daemon cannot start. */
#define _GNU_SOURCE /* SCHED_BATCH */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char body[] = "{\"status\":\"ok\"}";

static int nice_increment;

static void lower_thread_priority(void)
{
    static __thread int done;
    if (done || nice_increment <= 0)
        return;
    done = 1;
    id_t tid = (id_t)syscall(SYS_gettid);
    int now = getpriority(PRIO_PROCESS, tid);
    setpriority(PRIO_PROCESS, tid, now + nice_increment > 19 ? 19 : now + nice_increment);
    struct sched_param none = {0};
    sched_setscheduler((pid_t)tid, SCHED_BATCH, &none);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (*upload_size) { /* a body: take it and wait for the end */
        *upload_size = 0;
        return MHD_YES;
    }
    if (!*con_cls) { /* the headers: answer at the next call, as octetd does */
        lower_thread_priority();
        *con_cls = (void *)1;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

int main(int argc, char **argv)
{
    unsigned threads = 4;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--nice") && i + 1 < argc)
            nice_increment = atoi(argv[++i]);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer,
                                            NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        fprintf(stderr, "bare_mhd: cannot start the daemon\n");
        return 1;
    }
    printf("listening on http://127.0.0.1:%u/\n", info->port);
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
