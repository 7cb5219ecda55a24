/* See redis_fixture.h. Never uses the default port, never a system service. */
#include "redis_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

static int
free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s >= 0 && bind(s, (struct sockaddr *) &a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *) &a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (s >= 0) {
        close(s);
    }
    return port;
}

static int
start(redis_fixture_t *f, int cluster)
{
    const char *bin = getenv("REDIS_SERVER");
    char port[16], nodes[300];
    struct timespec ts = {0, 20 * 1000 * 1000};
    int i;
    redisContext *c;

    memset(f, 0, sizeof(*f));
    if (bin == NULL || *bin == '\0') {
        bin = "redis-server";
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/mdm-redis-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    /* a cluster node's bus listens on port + 10000 */
    do {
        f->port = free_port();
    } while (cluster && f->port > 55535);
    if (f->port <= 0 || f->port == 6379) {
        return -1;
    }
    snprintf(port, sizeof(port), "%d", f->port);
    snprintf(nodes, sizeof(nodes), "%s/nodes.conf", f->dir);
    f->pid = fork();
    if (f->pid < 0) {
        return -1;
    }
    if (f->pid == 0) {
        const char *argv[24] = {bin,         "--port",
                                port,        "--bind",
                                "127.0.0.1", "--save",
                                "",          "--appendonly",
                                "no",        "--dir",
                                f->dir,      "--daemonize",
                                "no",        "--enable-debug-command",
                                "yes",       "--loglevel",
                                "warning"};
        int n = 17;
        int devnull = open("/dev/null", O_WRONLY);

        if (devnull >= 0) {
            dup2(devnull, 1);
        }
        if (cluster) {
            argv[n++] = "--cluster-enabled";
            argv[n++] = "yes";
            argv[n++] = "--cluster-config-file";
            argv[n++] = nodes;
        }
        argv[n] = NULL;
        execvp(bin, (char *const *) argv);
        _exit(127);
    }
    for (i = 0; i < 250; i++) {
        c = redis_fixture_connect(f);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;

            freeReplyObject(r);
            redisFree(c);
            if (ok) {
                return 0;
            }
        }
        nanosleep(&ts, NULL);
    }
    redis_fixture_stop(f);
    return -1;
}

int
redis_fixture_start(redis_fixture_t *f)
{
    return start(f, 0);
}

int
redis_fixture_start_cluster(redis_fixture_t *f)
{
    return start(f, 1);
}

void
redis_fixture_stop(redis_fixture_t *f)
{
    char cmd[300];

    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    if (f->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", f->dir);
        }
        f->dir[0] = '\0';
    }
}

redisContext *
redis_fixture_connect(const redis_fixture_t *f)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", f->port, tv);

    if (c == NULL || c->err) {
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}
