/*
 * tcpfreeze-criu-hook: the action script CRIU runs at every step of a dump or a restore.
 *
 * A process start of the .NET hook costs about 3 ms and CRIU starts its action script at least six
 * times per migration, inside the downtime. This small front end costs well under 1 ms: when the
 * TcpFreeze agent runs (`tcpfreeze-criu-hook --agent`, a resident process with the hook's code loaded),
 * it hands the step to the agent over a Unix socket and copies the agent's answer (the exit code and
 * the lines for CRIU's log) back; otherwise it becomes the hook engine, which does the step itself.
 *
 * Protocol (version 1), one connection per step:
 *   client -> agent: "TFH1\0", then NUL-terminated "NAME=VALUE" entries (the CRTOOLS_* and
 *                    TCPFREEZE_* variables of this process), then one more "\0"; then the client
 *                    shuts its side down.
 *   agent -> client: one status byte, then text for CRIU's log up to the end of the stream.
 *                    0-254: the step's exit code. 255: the agent does not take this step (the text
 *                    says why); the client then runs the engine itself.
 * The agent checks that the client runs as root in the agent's own PID, mount and network namespaces; the
 * client checks that the agent runs as root.
 *
 * Settings: TCPFREEZE_AGENT_SOCKET (default /run/tcpfreeze/agent.sock); an empty value means "never
 * use an agent".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/tcpfreeze/agent.sock"
#define ENGINE_NAME "tcpfreeze-criu-hook-engine"
#define STATUS_NOT_TAKEN 255

extern char **environ;

/* One line for CRIU's log, marked as the hook's. */
static void say(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fputs("tcpfreeze-hook: ", stderr);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
    va_end(arguments);
}

/* Becomes the engine that sits beside this executable; returns only when that fails. */
static int run_engine(char **argv)
{
    char path[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (length <= 0) {
        say("cannot find this executable's folder (/proc/self/exe: %s)", strerror(errno));
        return 1;
    }
    path[length] = '\0';
    char *slash = strrchr(path, '/');
    if (slash == NULL || (size_t)(slash - path) + 1 + sizeof(ENGINE_NAME) > sizeof(path)) {
        say("cannot find this executable's folder (%s)", path);
        return 1;
    }
    strcpy(slash + 1, ENGINE_NAME);
    argv[0] = path;
    execve(path, argv, environ);
    say("cannot run %s: %s (install it beside tcpfreeze-criu-hook)", path, strerror(errno));
    return 1;
}

static int write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t sent = send(fd, data, size, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        data += sent;
        size -= (size_t)sent;
    }
    return 0;
}

static int wanted(const char *entry)
{
    return strncmp(entry, "CRTOOLS_", 8) == 0 || strncmp(entry, "TCPFREEZE_", 10) == 0;
}

/* Sends the request: the magic, the variables the hook reads, the end mark. */
static int send_request(int fd)
{
    if (write_all(fd, "TFH1", 5) != 0)
        return -1;
    for (char **entry = environ; *entry != NULL; entry++)
        if (wanted(*entry) && write_all(fd, *entry, strlen(*entry) + 1) != 0)
            return -1;
    if (write_all(fd, "", 1) != 0)
        return -1;
    return shutdown(fd, SHUT_WR);
}

/* Connects to the agent; -1 with errno set when there is none to talk to. */
static int connect_agent(const char *socket_path)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (strlen(socket_path) >= sizeof(address.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&address, sizeof(address));
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* A positive decimal number below `limit`, or -1. */
static long parse_positive(const char *text, long limit)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value <= 0 || value > limit)
        return -1;
    return value;
}

/*
 * The restore watcher (`--watch-restore CRIU_PID PIN_ROOT LOG_FILE|- LEASE_SECONDS`, started by the engine at
 * pre-restore): waits here, in this small process, for CRIU to end (at most LEASE_SECONDS), and only then becomes the
 * engine to detach when idle, with "ended" as a sixth argument. So the engine's own start-up (some 15 ms of CPU) never
 * runs while CRIU restores the tasks or they wait at pre-resume, inside the downtime. Arguments it cannot read go to
 * the engine, which says what is wrong.
 */
static int watch_restore(char **argv)
{
    for (int i = 2; i <= 5; i++)
        if (argv[i] == NULL)
            return run_engine(argv);
    long criu = parse_positive(argv[2], INT_MAX), lease = parse_positive(argv[5], 86400 + 1);
    if (argv[6] != NULL || criu < 0 || lease < 0)
        return run_engine(argv);
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)criu, 0);
    setsid();
    /* Let go of CRIU's output at once: whoever reads it waits for every copy to close. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    if (pidfd >= 0) {
        struct pollfd criu_exit = { .fd = pidfd, .events = POLLIN };
        int rc;
        do
            rc = poll(&criu_exit, 1, (int)(lease * 1000));
        while (rc < 0 && errno == EINTR);
        close(pidfd);
        if (rc == 0)
            return 0; /* CRIU still restores after the lease: its own post-resume detaches */
    }
    char ended[] = "ended";
    char *engine_argv[] = { argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], ended, NULL };
    return run_engine(engine_argv);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* Arguments are the engine's (--help, --agent, the dump watcher's), or the restore watcher's: CRIU passes none. */
    if (argv[1] != NULL)
        return strcmp(argv[1], "--watch-restore") == 0 ? watch_restore(argv) : run_engine(argv);

    const char *socket_path = getenv("TCPFREEZE_AGENT_SOCKET");
    if (socket_path == NULL)
        socket_path = DEFAULT_SOCKET;
    if (socket_path[0] == '\0')
        return run_engine(argv);

    int fd = connect_agent(socket_path);
    if (fd < 0) {
        /* No agent installed or running: the usual case without one, so say nothing. A socket left
           by an agent that stopped (ECONNREFUSED) or one that cannot be reached otherwise is worth
           a line: the operator expected the fast path. */
        if (errno != ENOENT)
            say("the agent at %s did not answer (%s); the hook does this step itself", socket_path, strerror(errno));
        return run_engine(argv);
    }

    struct ucred agent;
    socklen_t size = sizeof(agent);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &agent, &size) != 0 || agent.uid != 0) {
        close(fd);
        say("the process behind %s does not run as root, so it is not TcpFreeze's agent; the hook does this step itself", socket_path);
        return run_engine(argv);
    }

    if (send_request(fd) != 0) {
        int saved = errno;
        close(fd);
        say("the agent at %s closed the connection before it had the request (%s); the hook does this step itself", socket_path, strerror(saved));
        return run_engine(argv);
    }

    /* The answer: the status byte, then the log text, copied to stderr (CRIU's log) as it comes. */
    char buffer[8192];
    int status = -1;
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int saved = errno;
            close(fd);
            if (status < 0)
                say("reading the agent's answer failed (%s); the step failed", strerror(saved));
            return 1;
        }
        if (got == 0)
            break;
        char *text = buffer;
        if (status < 0) {
            status = (unsigned char)buffer[0];
            text++;
            got--;
        }
        for (ssize_t written = 0; written < got;) {
            ssize_t n = write(STDERR_FILENO, text + written, (size_t)(got - written));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* CRIU's log is gone: the exit code still counts */
            written += n;
        }
    }
    close(fd);
    if (status < 0) {
        /* The agent took the request and ended without an answer: it may have done part of the
           step, so running it again here could do it twice. CRIU fails the step instead. */
        say("the agent at %s ended without an answer (stopped or crashed: see its log, e.g. 'journalctl -u tcpfreeze-agent'); the step failed", socket_path);
        return 1;
    }
    if (status == STATUS_NOT_TAKEN)
        return run_engine(argv);
    return status;
}
