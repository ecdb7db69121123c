/*
 * loadgen: the benchmark's hot load generator, one epoll thread.
 *
 * Why C: the servers under test deliver over a million lines a second on two
 * cores; a Python receiver parsing every frame would be the bottleneck long
 * before they are. This agent only counts LF bytes in large reads on most
 * connections, and parses lines (to read the send timestamp carried in each
 * message) on a few "probe" connections, so its cost per delivery is a memchr.
 *
 * It is an agent driven by the Python orchestrator (bench/agent.py): commands
 * arrive on stdin one per line, each result leaves on stdout as one JSON line.
 * Connections stay open between commands, so a ramp can run many steps over
 * the same joined users. stdin is in the epoll set, so sockets keep being
 * read while no command runs.
 *
 * Protocols: "chat" (this project's line protocol, PROTOCOL.md), "irc"
 * (NICK/USER/JOIN/PRIVMSG on one channel, for ngircd) and "ws" (the browser
 * JSON protocol through the web gateway: an HTTP upgrade, then masked text
 * frames out, NDJSON events in). WebSocket frames are always tracked (a header
 * per gateway message, cheap); counting connections count '{' bytes in the
 * payloads, one per event, as the others count LFs (the bench's texts and IDs
 * hold no '{', and JSON escaping adds none); probes split payloads into event
 * lines, a message's end ending its last line.
 *
 * Commands (all times bounded; every command ends by itself):
 *   connect N CONC TIMEOUT_S WAIT_NOTICES [ACCEPT_WINDOW]
 *   step MODE RATE SECS SENDERS PROBES PARSE_ALL CHURN_RATE DRAIN_S QUIET_MS
 *        MODE: b (broadcast to the room) or w (whisper to one user)
 *   settle QUIET_MS TIMEOUT_S
 *   idle SECS
 *   close
 *   stats
 *   quit
 *
 * Only loopback addresses are accepted; the agent exits when stdin closes or
 * after --max-secs, whichever comes first.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PRE 160                 /* bytes of each line kept for parsing */
#define RBUF (256 * 1024)       /* one read */
#define OUT_CAP (1 << 20)       /* a sender's unsent bytes before it skips messages */
#define MAXEV 1024
#define TICK_NS 500000LL        /* pacing quantum: 0.5 ms */
#define HAS(p, n, lit) (memmem((p), (n), (lit), sizeof(lit) - 1) != NULL)

enum { P_CHAT = 0, P_IRC = 1, P_WS = 2 };
enum { S_CONNECTING = 1, S_REGISTERING, S_JOINING, S_JOINED, S_QUITTING, S_CLOSED };
enum { T_NONE = 0, T_CONNECT, T_STEP, T_SETTLE, T_IDLE };

typedef struct conn {
    int fd;
    int id;
    uint8_t state;
    uint8_t parse;    /* parse lines (join phase, probes, parse-all steps) */
    uint8_t intro;    /* just joined: 1 at a line start, 2 inside a 111/112/141 line (history, token, page) */
    uint8_t stable;   /* a benchmark user (1) or a churner (0) */
    uint8_t want_out; /* EPOLLOUT registered */
    uint8_t kind;     /* churn kind: 0 polite quit, 1 abrupt close, 2 never joins */
    uint8_t sender;
    uint8_t handshaking; /* connected or connecting, nothing heard from the server yet */
    uint8_t ws;          /* WebSocket: handshake done, bytes are frames */
    uint8_t wsstate;     /* 0: reading a frame header, 1: its payload */
    uint8_t wshlen;      /* header bytes gathered */
    uint8_t wsop;        /* opcode of the frame being read */
    uint8_t wsfin;
    uint8_t ctllen;
    uint8_t wsh[14];
    char ctl[126];       /* a control frame's payload (ping) */
    uint64_t wsleft;     /* payload bytes left in the frame being read */
    uint16_t prelen;
    char pre[PRE];
    char *out;
    uint32_t olen, ooff, ocap;
    int64_t deadline; /* churners: when to leave */
    int64_t next_due; /* senders: scheduled time of the next message */
    uint32_t rot;     /* whisper target rotation */
    struct conn *next_churn;
} conn;

/* ---------------------------------------------------------------- globals */

static int g_proto = P_CHAT;
static struct sockaddr_in g_addr;
static struct sockaddr_in g_addr2; /* --port2: a second node of a shared room; odd users go there */
static int g_naddr = 1;
static char g_prefix[16] = "u";
static char g_chan[64] = "#bench";
static char g_path[256] = "/ws"; /* the gateway's WebSocket path */
static char g_hostport[64];
static int g_msgsize = 100;
static int g_ep = -1;
static int64_t g_origin;
static int64_t g_max_ns = 7200LL * 1000000000LL;
static char *g_rbuf;
static int g_stdin_tag;
static char g_cmd[4096];
static size_t g_cmdlen;

static conn **g_users; /* stable users, by id */
static int g_nusers, g_capusers;
static int g_njoined;  /* stable users in S_JOINED */
static int g_handshaking; /* connections not yet heard from: may sit in the server's accept queue */
static conn *g_churners;
static uint64_t g_churn_seq;

/* counters reset by each task */
static uint64_t g_deliv;       /* deliveries at stable joined users */
static int64_t g_last_deliv;   /* when g_deliv last grew */
static uint64_t g_bytes;       /* bytes read, any connection */
static int64_t g_last_byte;    /* when any byte was last read */
static uint64_t g_drops;       /* stable joined users lost */
static uint64_t g_errors_logged;

/* latency histogram, microseconds, log-linear: exact below 1024, then 64 per octave */
#define HBASE 1024
#define HSUB 64
#define HBUCKETS (HBASE + 44 * HSUB)
static uint64_t g_hist[HBUCKETS];
static uint64_t g_hcount;
static uint64_t g_hmax;
/* with two nodes: the latencies of messages whose sender is on the other node than the probe */
static uint64_t g_xhist[HBUCKETS];
static uint64_t g_xcount;

static struct {
    int kind;
    int64_t t0, deadline;
    struct rusage ru0;
    /* connect */
    int target, conc, inflight, started, joined, failed, m0, wait_notices, accept_window;
    int64_t t_last_join, t_notices;
    uint64_t exp_notices;
    /* step */
    char mode;
    double rate, churn_rate;
    int64_t t_end, period, drain_start, drain_max, quiet;
    int nsend, nprobes, parse_all, draining;
    conn **senders;
    conn **targets;
    int ntargets;
    uint64_t sent, skipped, expected;
    int64_t next_churn;
    uint64_t churn_started, churn_done, churn_failed;
} T;

/* ---------------------------------------------------------------- helpers */

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void logmsg(const char *fmt, ...) {
    /* Errors can come by the thousand when a server drops users: log the first few. */
    if (g_errors_logged++ > 50) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void emit_json(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static inline int hbucket(uint64_t v) {
    if (v < HBASE) return (int)v;
    int e = 63 - __builtin_clzll(v);
    int b = HBASE + (e - 10) * HSUB + (int)((v >> (e - 6)) & 63);
    return b < HBUCKETS ? b : HBUCKETS - 1;
}

static double hvalue(int b) {
    if (b < HBASE) return b;
    int e = (b - HBASE) / HSUB + 10, sub = (b - HBASE) % HSUB;
    double lo = (double)((uint64_t)(64 + sub) << (e - 6));
    return lo + (double)(1ULL << (e - 6)) / 2.0;
}

static void hreset(void) {
    memset(g_hist, 0, sizeof g_hist);
    g_hcount = 0;
    g_hmax = 0;
    memset(g_xhist, 0, sizeof g_xhist);
    g_xcount = 0;
}

/* Percentile q (0..1) in milliseconds; -1 without samples. */
static double hpct_of(const uint64_t *hist, uint64_t count, double q) {
    if (!count) return -1;
    uint64_t want = (uint64_t)(q * (double)count + 0.999999);
    if (want < 1) want = 1;
    uint64_t acc = 0;
    for (int b = 0; b < HBUCKETS; b++) {
        acc += hist[b];
        if (acc >= want) return hvalue(b) / 1000.0;
    }
    return (double)g_hmax / 1000.0;
}

static double hpct(double q) { return hpct_of(g_hist, g_hcount, q); }

static double cpu_since(const struct rusage *r0, double wall) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    double u = (double)(r.ru_utime.tv_sec - r0->ru_utime.tv_sec) + (double)(r.ru_utime.tv_usec - r0->ru_utime.tv_usec) / 1e6;
    double s = (double)(r.ru_stime.tv_sec - r0->ru_stime.tv_sec) + (double)(r.ru_stime.tv_usec - r0->ru_stime.tv_usec) / 1e6;
    return wall > 0 ? (u + s) / wall : 0;
}

static int user_name(const conn *c, char *buf, size_t n) {
    if (c->stable) return snprintf(buf, n, "%s%d", g_prefix, c->id);
    return snprintf(buf, n, "%sc%d", g_prefix, c->id);
}

/* ---------------------------------------------------------------- output */

static void set_out_interest(conn *c, int want) {
    if (c->want_out == want || c->fd < 0) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = (uint8_t)want;
}

static char *out_reserve(conn *c, uint32_t n) {
    if (c->ooff && c->ooff == c->olen) c->ooff = c->olen = 0;
    if (c->olen + n > c->ocap) {
        if (c->ooff) {
            memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
            c->olen -= c->ooff;
            c->ooff = 0;
        }
        if (c->olen + n > c->ocap) {
            uint32_t cap = c->ocap ? c->ocap : 4096;
            while (cap < c->olen + n) cap *= 2;
            char *p = realloc(c->out, cap);
            if (!p) {
                perror("realloc");
                exit(2);
            }
            c->out = p;
            c->ocap = cap;
        }
    }
    char *p = c->out + c->olen;
    c->olen += n;
    return p;
}

static void conn_close(conn *c, int why_dropped);

/* Write what is queued; keep the rest for EPOLLOUT. */
static void conn_flush(conn *c) {
    while (c->ooff < c->olen) {
        ssize_t n = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
        if (n > 0) {
            c->ooff += (uint32_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0 && errno == EINTR) continue;
        logmsg("write to %d: %s", c->id, strerror(errno));
        conn_close(c, 1);
        return;
    }
    set_out_interest(c, c->ooff < c->olen);
}

static void conn_send(conn *c, const char *data, size_t n) {
    memcpy(out_reserve(c, (uint32_t)n), data, n);
    conn_flush(c);
}

static uint32_t pending(const conn *c) { return c->olen - c->ooff; }

/* ---------------------------------------------------------------- lifecycle */

static void task_join_failed(conn *c);

static void conn_close(conn *c, int dropped) {
    if (c->fd < 0) return;
    if (c->handshaking) {
        c->handshaking = 0;
        g_handshaking--;
    }
    if (c->stable && c->state == S_JOINED) {
        g_njoined--;
        if (dropped) g_drops++;
    }
    if (c->state != S_JOINED && c->state != S_QUITTING && c->stable) task_join_failed(c);
    if (!c->stable) {
        if (c->state == S_QUITTING) T.churn_done++;
        else T.churn_failed++;
    }
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = S_CLOSED;
    free(c->out);
    c->out = NULL;
    c->olen = c->ooff = c->ocap = 0;
}

static int conn_open(conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        logmsg("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const struct sockaddr_in *to = (g_naddr > 1 && (c->id & 1)) ? &g_addr2 : &g_addr;
    if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS) {
        logmsg("connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = S_CONNECTING;
    c->want_out = 1;
    c->handshaking = 1;
    g_handshaking++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* One masked text frame. The mask key is zero: legal (RFC 6455 only asks the client to mask), and the payload
 * is then sent as is; a benchmark needs no protection against cache poisoning by its own proxies. */
static void ws_send(conn *c, uint8_t op, const char *data, size_t n) {
    uint8_t h[8];
    size_t hl;
    h[0] = (uint8_t)(0x80 | op);
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
        hl = 2;
    } else {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    }
    memset(h + hl, 0, 4);
    hl += 4;
    char *o = out_reserve(c, (uint32_t)(hl + n));
    memcpy(o, h, hl);
    memcpy(o + hl, data, n);
}

static void ws_text(conn *c, const char *fmt, ...) {
    char buf[4096 + 256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    ws_send(c, 0x1, buf, (size_t)n);
}

static void on_connected(conn *c, int64_t now) {
    char name[48], buf[160];
    user_name(c, name, sizeof name);
    int n;
    if (c->kind == 2 && !c->stable) { /* a churner that never joins */
        c->state = S_QUITTING;
        c->deadline = now + (int64_t)(100 + (c->id * 37) % 400) * 1000000LL;
        set_out_interest(c, 0);
        return;
    }
    if (g_proto == P_WS) {
        char req[512];
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     g_path, g_hostport);
        c->state = S_REGISTERING;
        c->parse = 1;
        conn_send(c, req, (size_t)n);
        if (c->fd >= 0 && !pending(c)) set_out_interest(c, 0);
        return;
    } else if (g_proto == P_CHAT) {
        n = snprintf(buf, sizeof buf, "001#%s\n", name);
        c->state = S_JOINING;
    } else {
        n = snprintf(buf, sizeof buf, "NICK %s\r\nUSER %s 0 * :bench\r\n", name, name);
        c->state = S_REGISTERING;
    }
    c->parse = 1;
    conn_send(c, buf, (size_t)n);
    if (c->fd >= 0 && !pending(c)) set_out_interest(c, 0);
}

static void task_connect_pump(int64_t now);

static void on_joined(conn *c, int64_t now) {
    c->state = S_JOINED;
    c->parse = 0;
    c->intro = 1; /* the 111, 112 and 141 lines that may follow 107 are no deliveries */
    if (!c->stable) {
        c->parse = 1;
        c->deadline = now + (int64_t)(100 + (c->id * 37) % 400) * 1000000LL;
        return;
    }
    g_njoined++;
    if (T.kind == T_CONNECT) {
        T.inflight--;
        T.joined++;
        T.t_last_join = now;
        task_connect_pump(now);
    }
}

static void task_join_failed(conn *c) {
    if (T.kind == T_CONNECT && c->stable) {
        T.inflight--;
        T.failed++;
    }
}

/* ---------------------------------------------------------------- input */

static void on_line(conn *c, const char *l, size_t len, int64_t now) {
    if (len && l[len - 1] == '\r') len--;
    if (c->state == S_JOINED) {
        const char *m = memmem(l, len, "^T", 2);
        if (m) {
            if (c->stable) {
                g_deliv++;
                g_last_deliv = now;
                const char *p = m + 2, *e = l + len;
                uint64_t ts = 0;
                int digits = 0;
                while (p < e && *p >= '0' && *p <= '9') {
                    ts = ts * 10 + (uint64_t)(*p++ - '0');
                    digits++;
                }
                if (digits) {
                    int64_t us = (now - g_origin) / 1000 - (int64_t)ts;
                    if (us < 0) us = 0;
                    g_hist[hbucket((uint64_t)us)]++;
                    g_hcount++;
                    if ((uint64_t)us > g_hmax) g_hmax = (uint64_t)us;
                    /* "^T<ts>^<sender's node>": a message from the other node */
                    if (g_naddr > 1 && p + 1 < e && *p == '^' && (p[1] == '0' || p[1] == '1') &&
                        (p[1] - '0') != (c->id & 1)) {
                        g_xhist[hbucket((uint64_t)us)]++;
                        g_xcount++;
                    }
                }
            }
            return;
        }
    }
    if (g_proto == P_WS) {
        if (c->state == S_REGISTERING) { /* the HTTP answer to the upgrade */
            if (len >= 5 && memcmp(l, "HTTP/", 5) == 0 && !memmem(l, len, " 101", 4)) {
                logmsg("upgrade refused for %d: %.*s", c->id, (int)(len > 80 ? 80 : len), l);
                conn_close(c, 0);
            } else if (len == 0) { /* end of the headers: frames from here on */
                char name[48];
                user_name(c, name, sizeof name);
                c->ws = 1;
                c->wsstate = 0;
                c->wshlen = 0;
                c->state = S_JOINING;
                ws_text(c, "{\"type\":\"join\",\"id\":\"%s\"}", name);
                conn_flush(c);
            }
            return;
        }
        if (c->state != S_JOINING) return;
        if (HAS(l, len, "\"type\":\"users\"")) {
            on_joined(c, now);
        } else if (HAS(l, len, "\"type\":\"id_taken\"") || HAS(l, len, "\"type\":\"error\"")) {
            logmsg("join refused for %d: %.*s", c->id, (int)(len > 80 ? 80 : len), l);
            conn_close(c, 0);
        }
        return;
    }
    if (g_proto == P_CHAT) {
        if (c->state != S_JOINING) return;
        if (len >= 3 && memcmp(l, "107", 3) == 0 && (len == 3 || l[3] == '#')) {
            on_joined(c, now);
        } else if (len >= 3 && (memcmp(l, "101", 3) == 0 || memcmp(l, "109", 3) == 0)) {
            logmsg("join refused for %d: %.*s", c->id, (int)(len > 80 ? 80 : len), l);
            conn_close(c, 0);
        }
        return;
    }
    /* IRC: skip the prefix, look at the command */
    const char *p = l, *e = l + len;
    if (p < e && *p == ':') {
        p = memchr(p, ' ', (size_t)(e - p));
        if (!p) return;
        p++;
    }
    const char *cmd = p;
    while (p < e && *p != ' ') p++;
    size_t clen = (size_t)(p - cmd);
    if (clen == 4 && memcmp(cmd, "PING", 4) == 0) {
        char buf[PRE + 16];
        int n = snprintf(buf, sizeof buf, "PONG%.*s\r\n", (int)(e - p), p);
        conn_send(c, buf, (size_t)n);
        return;
    }
    if (c->state == S_REGISTERING && clen == 3 && memcmp(cmd, "001", 3) == 0) {
        char buf[96];
        int n = snprintf(buf, sizeof buf, "JOIN %s\r\n", g_chan);
        c->state = S_JOINING;
        conn_send(c, buf, (size_t)n);
    } else if (c->state == S_JOINING && clen == 3 && memcmp(cmd, "366", 3) == 0) {
        on_joined(c, now);
    } else if ((c->state == S_REGISTERING || c->state == S_JOINING) &&
               ((clen == 3 && (cmd[0] == '4' || cmd[0] == '5')) || (clen == 5 && memcmp(cmd, "ERROR", 5) == 0))) {
        logmsg("join refused for %d: %.*s", c->id, (int)(len > 80 ? 80 : len), l);
        conn_close(c, 0);
    }
}

/* Split lines and keep each one's first PRE bytes; returns the bytes used, fewer than n when the connection
 * stopped parsing (just joined: the rest is counted), was closed, or switched to WebSocket frames. */
static size_t lines(conn *c, const char *p, size_t n, int64_t now) {
    const char *start = p, *end = p + n;
    uint8_t ws = c->ws;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p);
        if (c->prelen < PRE) {
            size_t k = seg < (size_t)(PRE - c->prelen) ? seg : (size_t)(PRE - c->prelen);
            memcpy(c->pre + c->prelen, p, k);
            c->prelen = (uint16_t)(c->prelen + k);
        }
        if (!nl) return n;
        p = nl + 1;
        size_t len = c->prelen;
        c->prelen = 0;
        on_line(c, c->pre, len, now);
        if (c->fd < 0 || !c->parse || c->ws != ws) return (size_t)(p - start);
    }
    return n;
}

/* Skip the history (111), session token (112) and history page (141) lines that may follow a join: the room's
   lines start after. */
static size_t skip_intro(conn *c, const char *p, size_t n) {
    const char *start = p, *e = p + n;
    while (c->intro && p < e) {
        if (c->intro == 2) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            if (!nl) return n;
            p = nl + 1;
            c->intro = 1;
        } else if (e - p >= 4 && (memcmp(p, "111#", 4) == 0 || memcmp(p, "112#", 4) == 0
                                || memcmp(p, "141#", 4) == 0)) {
            c->intro = 2;
        } else {
            c->intro = 0;
        }
    }
    return (size_t)(p - start);
}

static void count_deliveries(conn *c, const char *p, size_t n, int64_t now, char mark) {
    if (mark == '\n' && c->intro) {
        size_t skipped = skip_intro(c, p, n);
        p += skipped;
        n -= skipped;
    }
    if (c->state == S_JOINED && c->stable) {
        size_t k = 0;
        const char *e = p + n;
        while ((p = memchr(p, mark, (size_t)(e - p))) != NULL) {
            k++;
            p++;
        }
        if (k) {
            g_deliv += k;
            g_last_deliv = now;
        }
    }
}

static void ws_frame_end(conn *c, int64_t now) {
    c->wsstate = 0;
    if (c->wsop >= 0x8) {
        if (c->wsop == 0x9) { /* ping: pong with the same payload */
            ws_send(c, 0xA, c->ctl, c->ctllen);
            conn_flush(c);
        }
        c->ctllen = 0;
        return;
    }
    if (c->wsfin && c->parse && c->prelen) { /* a message's end ends its last event line */
        size_t len = c->prelen;
        c->prelen = 0;
        on_line(c, c->pre, len, now);
    }
}

/* WebSocket frames from the gateway: headers parsed, payloads counted or split into lines. */
static void ws_process(conn *c, const char *p, size_t n, int64_t now) {
    while (n && c->fd >= 0) {
        if (c->wsstate == 0) {
            c->wsh[c->wshlen++] = (uint8_t)*p++;
            n--;
            if (c->wshlen < 2) continue;
            uint8_t l7 = c->wsh[1] & 0x7f;
            size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->wsh[1] & 0x80) ? 4 : 0);
            if (c->wshlen < need) continue;
            uint64_t len = l7;
            if (l7 == 126) len = ((uint64_t)c->wsh[2] << 8) | c->wsh[3];
            else if (l7 == 127) {
                len = 0;
                for (int i = 2; i < 10; i++) len = (len << 8) | c->wsh[i];
            }
            if (c->wsh[1] & 0x80) {
                logmsg("user %d: masked frame from the server", c->id);
                conn_close(c, 1);
                return;
            }
            c->wsop = c->wsh[0] & 0x0f;
            c->wsfin = c->wsh[0] & 0x80;
            c->wshlen = 0;
            c->wsleft = len;
            c->wsstate = 1;
            if (c->wsop >= 0x8 && len > 125) {
                logmsg("user %d: control frame of %llu bytes", c->id, (unsigned long long)len);
                conn_close(c, 1);
                return;
            }
            if (!len) ws_frame_end(c, now);
            continue;
        }
        size_t k = n < c->wsleft ? n : (size_t)c->wsleft;
        if (c->wsop >= 0x8) {
            memcpy(c->ctl + c->ctllen, p, k);
            c->ctllen = (uint8_t)(c->ctllen + k);
        } else if (c->parse) {
            k = lines(c, p, k, now);
            if (c->fd < 0) return;
        } else {
            count_deliveries(c, p, k, now, '{');
        }
        p += k;
        n -= k;
        c->wsleft -= k;
        if (!c->wsleft) ws_frame_end(c, now);
    }
}

/* A read's bytes: count LFs (or events), or split lines and keep each one's first PRE bytes. */
static void process(conn *c, const char *p, size_t n, int64_t now) {
    while (n && c->fd >= 0) {
        if (c->ws) {
            ws_process(c, p, n, now);
            return;
        }
        if (!c->parse) {
            count_deliveries(c, p, n, now, '\n');
            return;
        }
        size_t used = lines(c, p, n, now);
        p += used;
        n -= used;
    }
}

static void on_readable(conn *c) {
    for (int i = 0; i < 8 && c->fd >= 0; i++) {
        ssize_t n = read(c->fd, g_rbuf, RBUF);
        if (n > 0) {
            int64_t now = now_ns();
            if (c->handshaking) {
                c->handshaking = 0;
                g_handshaking--;
            }
            g_bytes += (uint64_t)n;
            g_last_byte = now;
            process(c, g_rbuf, (size_t)n, now);
            if (n < RBUF) return;
            continue;
        }
        if (n == 0) {
            int expected_eof = c->state == S_QUITTING;
            if (!expected_eof && c->stable) logmsg("user %d: server closed the connection", c->id);
            conn_close(c, !expected_eof);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        if (c->stable) logmsg("read from user %d: %s", c->id, strerror(errno));
        conn_close(c, 1);
        return;
    }
}

static void on_writable(conn *c, int64_t now) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            logmsg("connect user %d: %s", c->id, strerror(err));
            conn_close(c, 0);
            return;
        }
        on_connected(c, now);
        return;
    }
    conn_flush(c);
}

/* ---------------------------------------------------------------- users */

static conn *new_conn(int stable) {
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        perror("calloc");
        exit(2);
    }
    c->fd = -1;
    c->stable = (uint8_t)stable;
    return c;
}

static void add_user(int64_t now) {
    if (g_nusers == g_capusers) {
        g_capusers = g_capusers ? g_capusers * 2 : 1024;
        g_users = realloc(g_users, (size_t)g_capusers * sizeof *g_users);
        if (!g_users) {
            perror("realloc");
            exit(2);
        }
    }
    conn *c = new_conn(1);
    c->id = g_nusers;
    g_users[g_nusers++] = c;
    if (conn_open(c) < 0) {
        c->state = S_CLOSED;
        task_join_failed(c);
    }
    (void)now;
}

/* Keep CONC joins in flight until TARGET have been started, and at most ACCEPT_WINDOW connections the server
 * has not answered yet: ngircd listens with a backlog of 10, and a full accept queue drops SYNs, which would
 * measure the kernel's 1 s SYN retransmit timer instead of the server. */
static void task_connect_pump(int64_t now) {
    while (T.kind == T_CONNECT && T.inflight < T.conc && T.started < T.target && g_handshaking < T.accept_window) {
        T.started++;
        T.inflight++; /* given back by on_joined or task_join_failed */
        add_user(now);
    }
}

/* ---------------------------------------------------------------- churn */

static void churn_start(int64_t now) {
    conn *c = new_conn(0);
    c->id = (int)(g_churn_seq++);
    c->kind = (uint8_t)(c->id % 3);
    T.churn_started++;
    if (conn_open(c) < 0) {
        T.churn_failed++;
        free(c);
        return;
    }
    c->deadline = now + 10000000000LL; /* joined within 10 s, or a failed cycle */
    c->next_churn = g_churners;
    g_churners = c;
}

/* Leave the churners whose time is up; free the closed ones. conn_close counts the outcome. */
static void churn_tick(int64_t now) {
    conn **pp = &g_churners;
    while (*pp) {
        conn *c = *pp;
        if (c->fd >= 0 && now >= c->deadline) {
            if (c->state == S_JOINED && c->kind == 0) { /* polite: 004 / QUIT, then wait for the close */
                char name[48], buf[96];
                user_name(c, name, sizeof name);
                c->state = S_QUITTING;
                c->kind = 3; /* waiting for the server to close */
                c->deadline = now + 2000000000LL;
                if (g_proto == P_WS) {
                    ws_text(c, "{\"type\":\"leave\"}");
                    conn_flush(c);
                } else {
                    int n = g_proto == P_CHAT ? snprintf(buf, sizeof buf, "004#%s\n", name)
                                              : snprintf(buf, sizeof buf, "QUIT :bye\r\n");
                    conn_send(c, buf, (size_t)n);
                }
            } else if (c->state == S_JOINED || (c->state == S_QUITTING && c->kind == 2)) {
                c->state = S_QUITTING; /* abrupt close, or the never-joined one leaving: done */
                conn_close(c, 0);
            } else {
                if (c->state == S_QUITTING) c->state = S_JOINING; /* no close after QUIT: failed */
                conn_close(c, 0);
            }
        }
        if (c->fd < 0) {
            *pp = c->next_churn;
            free(c->out);
            free(c);
            continue;
        }
        pp = &c->next_churn;
    }
}

/* ---------------------------------------------------------------- messages */

static int payload(char *buf, int64_t ts_ns, int node) {
    int n = snprintf(buf, 32, "^T%lld^%d", (long long)((ts_ns - g_origin) / 1000), node);
    while (n < g_msgsize) buf[n++] = 'x';
    return n;
}

static void emit(conn *s, int64_t ts) {
    char line[4096 + 256], pl[4096];
    char name[48];
    int pn = payload(pl, ts, g_naddr > 1 ? (s->id & 1) : 0), n;
    if (T.mode == 'b') {
        if (g_proto == P_WS) {
            ws_text(s, "{\"type\":\"say\",\"text\":\"%.*s\"}", pn, pl);
            n = 0;
        } else if (g_proto == P_CHAT) {
            user_name(s, name, sizeof name);
            n = snprintf(line, sizeof line, "002#%s#%.*s\n", name, pn, pl);
        } else {
            n = snprintf(line, sizeof line, "PRIVMSG %s :%.*s\r\n", g_chan, pn, pl);
        }
        T.expected += (uint64_t)(g_njoined - 1);
    } else {
        conn *t = NULL;
        for (int tries = 0; tries < T.ntargets && !t; tries++) {
            conn *cand = T.targets[s->rot++ % (uint32_t)T.ntargets];
            if (cand != s && cand->state == S_JOINED) t = cand;
        }
        if (!t) {
            T.skipped++;
            return;
        }
        char to[48];
        user_name(t, to, sizeof to);
        if (g_proto == P_WS) {
            ws_text(s, "{\"type\":\"whisper\",\"to\":\"%s\",\"text\":\"%.*s\"}", to, pn, pl);
            n = 0;
        } else if (g_proto == P_CHAT) {
            user_name(s, name, sizeof name);
            n = snprintf(line, sizeof line, "003#%s#%s#%.*s\n", name, to, pn, pl);
        } else {
            n = snprintf(line, sizeof line, "PRIVMSG %s :%.*s\r\n", to, pn, pl);
        }
        T.expected += 1;
    }
    if (n) memcpy(out_reserve(s, (uint32_t)n), line, (size_t)n);
    T.sent++;
}

/* Generate every message due by now (stamped with its scheduled time), then write once per sender. */
static void generate(int64_t now) {
    for (int i = 0; i < T.nsend; i++) {
        conn *s = T.senders[i];
        if (s->fd < 0 || s->state != S_JOINED) continue;
        while (s->next_due <= now && s->next_due < T.t_end) {
            if (pending(s) > OUT_CAP) T.skipped++; /* the server is not reading this sender */
            else emit(s, s->next_due);
            s->next_due += T.period;
        }
        if (pending(s)) conn_flush(s);
    }
}

/* ---------------------------------------------------------------- tasks */

static void task_begin(int kind, int64_t now) {
    memset(&T, 0, sizeof T);
    T.kind = kind;
    T.t0 = now;
    getrusage(RUSAGE_SELF, &T.ru0);
    g_deliv = 0;
    g_last_deliv = now;
    g_last_byte = now;
    g_drops = 0;
    hreset();
}

static void cmd_connect(int n, int conc, double timeout_s, int wait_notices, int window, int64_t now) {
    task_begin(T_CONNECT, now);
    T.target = n;
    T.conc = conc > 0 ? conc : 1;
    T.accept_window = window > 0 ? window : T.conc;
    T.m0 = g_njoined;
    T.wait_notices = wait_notices;
    T.deadline = now + (int64_t)(timeout_s * 1e9);
    task_connect_pump(now);
}

static void finish_connect(int64_t now) {
    double wall = (double)(now - T.t0) / 1e9;
    emit_json("{\"cmd\":\"connect\",\"ok\":%s,\"requested\":%d,\"joined\":%d,\"failed\":%d,\"users\":%d,"
              "\"join_secs\":%.4f,\"notices_expected\":%llu,\"notices\":%llu,\"notices_secs\":%.4f,"
              "\"wall_secs\":%.4f,\"gen_cpu\":%.3f}",
              T.joined == T.target ? "true" : "false", T.target, T.joined, T.failed, g_njoined,
              T.joined ? (double)(T.t_last_join - T.t0) / 1e9 : 0.0, (unsigned long long)T.exp_notices,
              (unsigned long long)g_deliv, T.t_notices ? (double)(T.t_notices - T.t0) / 1e9 : -1.0, wall,
              cpu_since(&T.ru0, wall));
    T.kind = T_NONE;
}

static void check_connect(int64_t now) {
    task_connect_pump(now);
    int joins_done = T.joined + T.failed >= T.target;
    if (joins_done && !T.exp_notices) {
        uint64_t j = (uint64_t)T.joined;
        T.exp_notices = j * (uint64_t)T.m0 + j * (j - 1) / 2;
        if (!T.wait_notices || T.exp_notices == 0) T.t_notices = T.exp_notices ? 0 : now;
    }
    if (joins_done && T.wait_notices && T.exp_notices && !T.t_notices && g_deliv >= T.exp_notices)
        T.t_notices = g_last_deliv;
    int done = joins_done && (!T.wait_notices || T.t_notices || (now - g_last_byte > 3000000000LL));
    if (done || now >= T.deadline) finish_connect(now);
}

static int cmp_conn_id(const void *a, const void *b) {
    const conn *x = *(conn *const *)a, *y = *(conn *const *)b;
    return x->id - y->id;
}

static void cmd_step(char mode, double rate, double secs, int nsend, int nprobes, int parse_all, double churn_rate,
                     double drain_s, int quiet_ms, int64_t now) {
    task_begin(T_STEP, now);
    T.mode = mode == 'w' ? 'w' : 'b';
    T.rate = rate;
    T.churn_rate = churn_rate;
    T.parse_all = parse_all;
    T.t_end = now + (int64_t)(secs * 1e9);
    T.drain_max = (int64_t)(drain_s * 1e9);
    T.quiet = (int64_t)quiet_ms * 1000000LL;
    T.deadline = T.t_end + T.drain_max + 1000000000LL;
    /* the joined users, in id order */
    T.targets = malloc(((size_t)g_nusers + 1) * sizeof *T.targets);
    for (int i = 0; i < g_nusers; i++)
        if (g_users[i]->state == S_JOINED) T.targets[T.ntargets++] = g_users[i];
    qsort(T.targets, (size_t)T.ntargets, sizeof *T.targets, cmp_conn_id);
    int nj = T.ntargets;
    if (nsend > nj) nsend = nj;
    if (nsend < 1 || rate <= 0) nsend = 0;
    T.nsend = nsend;
    T.senders = malloc(((size_t)nsend + 1) * sizeof *T.senders);
    for (int i = 0; i < nj; i++) {
        T.targets[i]->sender = 0;
        T.targets[i]->parse = (uint8_t)(parse_all ? 1 : 0);
        T.targets[i]->rot = (uint32_t)(i + 1);
        T.targets[i]->prelen = 0;
    }
    if (nsend) T.period = (int64_t)(1e9 * nsend / rate);
    for (int k = 0; k < nsend; k++) {
        int at = (int)((long long)k * nj / nsend);
        /* two nodes: senders alternate between them (odd users are on the second), so both
           nodes read and publish, not only the first */
        if (g_naddr > 1 && ((T.targets[at]->id ^ k) & 1) && at + 1 < nj) at++;
        conn *s = T.targets[at];
        s->sender = 1;
        s->next_due = now + T.period * k / nsend;
        T.senders[k] = s;
    }
    /* probes: spread over the non-senders */
    int nonsend = nj - nsend;
    if (nprobes > nonsend) nprobes = nonsend;
    T.nprobes = nprobes;
    if (nprobes > 0) {
        int seen = 0, want = 0;
        for (int i = 0; i < nj && want < nprobes; i++) {
            conn *c = T.targets[i];
            if (c->sender) continue;
            if ((long long)seen * nprobes >= (long long)want * nonsend) {
                c->parse = 1;
                want++;
            }
            seen++;
        }
    }
    T.next_churn = churn_rate > 0 ? now : 0;
}

static void finish_step(int64_t now) {
    double wall = (double)(now - T.t0) / 1e9;
    double send_secs = (double)(T.t_end - T.t0) / 1e9;
    double deliv_secs = (double)(g_last_deliv - T.t0) / 1e9;
    if (deliv_secs < send_secs) deliv_secs = send_secs;
    double rate = deliv_secs > 0 ? (double)g_deliv / deliv_secs : 0;
    uint64_t lost = g_deliv < T.expected ? T.expected - g_deliv : 0;
    emit_json("{\"cmd\":\"step\",\"ok\":true,\"mode\":\"%s\",\"rate\":%.3f,\"secs\":%.3f,\"senders\":%d,\"probes\":%d,"
              "\"users\":%d,\"sent\":%llu,\"skipped\":%llu,\"expected\":%llu,\"delivered\":%llu,\"lost\":%llu,"
              "\"dropped_users\":%llu,\"deliveries_per_s\":%.1f,\"offered_per_s\":%.1f,\"deliv_secs\":%.4f,"
              "\"samples\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
              "\"cross_samples\":%llu,\"cross_p50_ms\":%.3f,\"cross_p99_ms\":%.3f,"
              "\"gen_cpu\":%.3f,\"wall_secs\":%.4f,\"churn_started\":%llu,\"churn_done\":%llu,\"churn_failed\":%llu}",
              T.mode == 'b' ? "broadcast" : "whisper", T.rate, send_secs, T.nsend, T.nprobes, g_njoined,
              (unsigned long long)T.sent, (unsigned long long)T.skipped, (unsigned long long)T.expected,
              (unsigned long long)g_deliv, (unsigned long long)lost, (unsigned long long)g_drops, rate,
              send_secs > 0 ? (double)T.expected / send_secs : 0.0, deliv_secs, (unsigned long long)g_hcount,
              hpct(0.50), hpct(0.90), hpct(0.99), hpct(0.999), g_hcount ? (double)g_hmax / 1000.0 : -1.0,
              (unsigned long long)g_xcount, hpct_of(g_xhist, g_xcount, 0.50), hpct_of(g_xhist, g_xcount, 0.99),
              cpu_since(&T.ru0, wall), wall, (unsigned long long)T.churn_started, (unsigned long long)T.churn_done,
              (unsigned long long)T.churn_failed);
    for (int i = 0; i < T.ntargets; i++) {
        T.targets[i]->sender = 0;
        T.targets[i]->parse = 0;
    }
    free(T.senders);
    free(T.targets);
    T.senders = T.targets = NULL;
    T.kind = T_NONE;
}

static void check_step(int64_t now) {
    if (now < T.t_end) {
        while (T.next_churn && now >= T.next_churn) {
            churn_start(now);
            T.next_churn += (int64_t)(1e9 / T.churn_rate);
        }
        return;
    }
    if (!T.draining) {
        T.draining = 1;
        T.drain_start = now;
    }
    int all_in = g_deliv >= T.expected;
    int quiet = now - g_last_deliv > T.quiet && now - T.drain_start > T.quiet;
    int churn_busy = g_churners != NULL && now - T.drain_start < 3000000000LL;
    if (((all_in || quiet) && !churn_busy) || now - T.drain_start > T.drain_max || now >= T.deadline) finish_step(now);
}

static void check_settle(int64_t now) {
    if (now - g_last_byte > T.quiet || now >= T.deadline) {
        double wall = (double)(now - T.t0) / 1e9;
        emit_json("{\"cmd\":\"settle\",\"ok\":%s,\"bytes\":%llu,\"lines\":%llu,\"wall_secs\":%.4f}",
                  now - g_last_byte > T.quiet ? "true" : "false", (unsigned long long)g_bytes,
                  (unsigned long long)g_deliv, wall);
        T.kind = T_NONE;
    }
}

static void check_idle(int64_t now) {
    if (now >= T.deadline) {
        double wall = (double)(now - T.t0) / 1e9;
        emit_json("{\"cmd\":\"idle\",\"ok\":true,\"users\":%d,\"lines\":%llu,\"dropped_users\":%llu,"
                  "\"wall_secs\":%.4f,\"gen_cpu\":%.3f}",
                  g_njoined, (unsigned long long)g_deliv, (unsigned long long)g_drops, wall, cpu_since(&T.ru0, wall));
        T.kind = T_NONE;
    }
}

static void cmd_close(void) {
    int n = 0;
    for (int i = 0; i < g_nusers; i++) {
        if (g_users[i]->fd >= 0) n++;
        g_users[i]->state = S_QUITTING; /* an expected close: not a drop */
        conn_close(g_users[i], 0);
        free(g_users[i]);
    }
    g_nusers = 0;
    g_njoined = 0;
    while (g_churners) {
        conn *c = g_churners;
        g_churners = c->next_churn;
        conn_close(c, 0);
        free(c);
    }
    emit_json("{\"cmd\":\"close\",\"ok\":true,\"closed\":%d}", n);
}

static void command(char *line, int64_t now) {
    char word[32] = "";
    if (sscanf(line, "%31s", word) != 1) return;
    if (T.kind != T_NONE) {
        emit_json("{\"cmd\":\"%s\",\"ok\":false,\"error\":\"busy\"}", word);
        return;
    }
    if (!strcmp(word, "connect")) {
        int n, conc, wait = 0, window = 0;
        double timeout;
        if (sscanf(line, "%*s %d %d %lf %d %d", &n, &conc, &timeout, &wait, &window) >= 3 && n >= 0) {
            cmd_connect(n, conc, timeout, wait, window, now);
            return;
        }
    } else if (!strcmp(word, "step")) {
        char mode;
        double rate, secs, churn, drain;
        int ns, np, pa, quiet;
        if (sscanf(line, "%*s %c %lf %lf %d %d %d %lf %lf %d", &mode, &rate, &secs, &ns, &np, &pa, &churn, &drain,
                   &quiet) == 9) {
            cmd_step(mode, rate, secs, ns, np, pa, churn, drain, quiet, now);
            return;
        }
    } else if (!strcmp(word, "settle")) {
        int quiet;
        double timeout;
        if (sscanf(line, "%*s %d %lf", &quiet, &timeout) == 2) {
            task_begin(T_SETTLE, now);
            g_bytes = 0;
            T.quiet = (int64_t)quiet * 1000000LL;
            T.deadline = now + (int64_t)(timeout * 1e9);
            return;
        }
    } else if (!strcmp(word, "idle")) {
        double secs;
        if (sscanf(line, "%*s %lf", &secs) == 1) {
            task_begin(T_IDLE, now);
            T.deadline = now + (int64_t)(secs * 1e9);
            return;
        }
    } else if (!strcmp(word, "close")) {
        cmd_close();
        return;
    } else if (!strcmp(word, "stats")) {
        int open = 0;
        for (int i = 0; i < g_nusers; i++) open += g_users[i]->fd >= 0;
        emit_json("{\"cmd\":\"stats\",\"ok\":true,\"users\":%d,\"joined\":%d,\"open\":%d}", g_nusers, g_njoined, open);
        return;
    } else if (!strcmp(word, "quit")) {
        exit(0);
    }
    emit_json("{\"cmd\":\"%s\",\"ok\":false,\"error\":\"bad command\"}", word);
}

static void on_stdin(int64_t now) {
    for (;;) {
        if (g_cmdlen >= sizeof g_cmd - 1) g_cmdlen = 0; /* absurd line: drop it */
        ssize_t n = read(0, g_cmd + g_cmdlen, sizeof g_cmd - 1 - g_cmdlen);
        if (n == 0) exit(0); /* the orchestrator is gone */
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            exit(0);
        }
        g_cmdlen += (size_t)n;
        char *nl;
        while ((nl = memchr(g_cmd, '\n', g_cmdlen)) != NULL) {
            *nl = 0;
            command(g_cmd, now);
            size_t used = (size_t)(nl - g_cmd) + 1;
            memmove(g_cmd, nl + 1, g_cmdlen - used);
            g_cmdlen -= used;
        }
    }
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr, "usage: loadgen --port P [--port2 P2] [--host 127.0.0.1] [--proto chat|irc|ws] [--prefix u] [--channel #bench]\n"
                    "               [--path /ws]\n"
                    "               [--msg-size 100] [--max-secs 7200]\n");
    exit(64);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, port2 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--port2")) port2 = atoi(v);
        else if (!strcmp(a, "--proto"))
            g_proto = !strcmp(v, "irc") ? P_IRC : !strcmp(v, "chat") ? P_CHAT : !strcmp(v, "ws") ? P_WS : -1;
        else if (!strcmp(a, "--path")) snprintf(g_path, sizeof g_path, "%s", v);
        else if (!strcmp(a, "--prefix")) snprintf(g_prefix, sizeof g_prefix, "%s", v);
        else if (!strcmp(a, "--channel")) snprintf(g_chan, sizeof g_chan, "%s", v);
        else if (!strcmp(a, "--msg-size")) g_msgsize = atoi(v);
        else if (!strcmp(a, "--max-secs")) g_max_ns = (int64_t)(atof(v) * 1e9);
        else usage();
        i++;
    }
    if (port <= 0 || port > 65535 || g_proto < 0 || g_msgsize < 16 || g_msgsize > 4000) usage();
    snprintf(g_hostport, sizeof g_hostport, "%s:%d", host, port);
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1 || (ntohl(g_addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: only loopback IPv4 addresses are allowed, got %s\n", host);
        return 64;
    }
    if (port2 > 0 && port2 <= 65535) {
        g_addr2 = g_addr;
        g_addr2.sin_port = htons((uint16_t)port2);
        g_naddr = 2;
    }
    signal(SIGPIPE, SIG_IGN);
    g_rbuf = malloc(RBUF);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (!g_rbuf || g_ep < 0) {
        perror("init");
        return 2;
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &g_stdin_tag};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, 0, &sev);
    g_origin = now_ns();
    emit_json("{\"cmd\":\"ready\",\"ok\":true,\"proto\":\"%s\",\"port\":%d}", g_proto == P_IRC ? "irc" : g_proto == P_WS ? "ws" : "chat", port);

    struct epoll_event evs[MAXEV];
    for (;;) {
        int64_t now = now_ns();
        if (now - g_origin > g_max_ns) {
            fprintf(stderr, "loadgen: --max-secs reached, exiting\n");
            return 3;
        }
        int64_t wait = 100000000LL; /* 100 ms when nothing is due */
        if (T.kind == T_STEP && now < T.t_end) wait = TICK_NS;
        else if (T.kind != T_NONE || g_churners) wait = 1000000LL;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
        int n = epoll_pwait2(g_ep, evs, MAXEV, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror("epoll_pwait2");
            return 2;
        }
        now = now_ns();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &g_stdin_tag) {
                on_stdin(now);
                continue;
            }
            conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->state == S_CONNECTING) on_writable(c, now); /* reports the connect error */
                else on_readable(c);
            }
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT)) on_writable(c, now);
        }
        now = now_ns();
        if (g_churners) churn_tick(now);
        switch (T.kind) {
        case T_CONNECT:
            check_connect(now);
            break;
        case T_STEP:
            generate(now);
            check_step(now);
            break;
        case T_SETTLE:
            check_settle(now);
            break;
        case T_IDLE:
            check_idle(now);
            break;
        default:
            break;
        }
    }
}
