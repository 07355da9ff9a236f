/* cli.c - the admin commands' shared part (see cli.h): failing with one line, reading
 * the command line into options and settings, and setting up the API client and the
 * Kafka clients. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkafka.h"
#include "dlog.h"
#include "dstartup.h"
#include "dtime.h"

extern char **environ;

/* The running command's name for messages, and its program's for the log (main
 * thread only). */
static const char *cli_name = "duro";
static char cli_prog[64];

int cli_fail(int status, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", cli_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

static int cli_is_help(const char *arg)
{
        return !strcmp(arg, "--help") || !strcmp(arg, "-h") ||
               !strcmp(arg, "--version");
}

/* The setting whose flag arg is ("--name" or "--name=value"), or NULL. */
static const struct dconf_opt *cli_setting(const struct cli_cmd *cmd, const char *arg)
{
        size_t len;

        if (strncmp(arg, "--", 2) != 0)
                return NULL;
        arg += 2;
        len = strcspn(arg, "=");
        for (size_t i = 0; i < cmd->nsettings; i++) {
                const char *flag = cmd->settings[i].flag;
                if (flag && strlen(flag) == len && !strncmp(flag, arg, len))
                        return &cmd->settings[i];
        }
        return NULL;
}

/* The option arg names (len bytes of it), or the positional one for an argument
 * without dashes while its field is still unset. */
static const struct cli_opt *cli_find_opt(const struct cli *cli, const char *arg,
                                          size_t len)
{
        const struct cli_cmd *cmd = cli->cmd;

        for (size_t i = 0; i < cmd->nopts; i++) {
                const struct cli_opt *o = &cmd->opts[i];
                if (arg[0] == '-' && o->name && strlen(o->name) == len &&
                    !strncmp(o->name, arg, len))
                        return o;
                if (arg[0] != '-' && !o->name &&
                    !*(const char **)((char *)cli->opts + o->off))
                        return o;
        }
        return NULL;
}

/* Stores val, the value of option o, into the options struct. */
static int cli_set_opt(struct cli *cli, const struct cli_opt *o, const char *val,
                       int argc)
{
        char *field = (char *)cli->opts + o->off, *end;
        struct cli_texts *t;
        long n;

        switch (o->type) {
        case CLI_SWITCH:
                *(int *)field = 1;
                return 0;
        case CLI_TEXT:
                *(const char **)field = val;
                return 0;
        case CLI_NUMBER:
                errno = 0;
                n     = strtol(val, &end, 10);
                if (errno || end == val || *end || n < o->min || n > o->max) {
                        if (o->max == LONG_MAX)
                                return cli_fail(CLI_USAGE,
                                                "%s %s: not a number of at least %ld",
                                                o->name, val, o->min);
                        return cli_fail(CLI_USAGE,
                                        "%s %s: not a number from %ld to %ld", o->name,
                                        val, o->min, o->max);
                }
                *(long *)field = n;
                return 0;
        case CLI_REPEAT:
                t = (struct cli_texts *)field;
                if (!t->v && !(t->v = calloc((size_t)argc, sizeof(*t->v))))
                        return cli_fail(CLI_FAIL, "out of memory");
                t->v[t->n++] = val;
                return 0;
        }
        return CLI_USAGE;
}

/* Takes the subcommand's option at argv[*i] (and its value). Returns 0 or the exit
 * status. A value given as --opt=value is never printed for an unknown option: it
 * might be a secret put where it does not belong. */
static int cli_take_opt(struct cli *cli, int argc, char **argv, int *i)
{
        const char *arg = argv[*i], *val = NULL;
        size_t len              = arg[0] == '-' ? strcspn(arg, "=") : strlen(arg);
        const struct cli_opt *o = cli_find_opt(cli, arg, len);

        if (!o)
                return cli_fail(CLI_USAGE, "%.*s: unknown option (see --help)",
                                (int)len, arg);
        if (!o->name)
                return cli_set_opt(cli, o, arg, argc);
        if (arg[len] == '=')
                val = arg + len + 1;
        else if (o->type != CLI_SWITCH && *i + 1 < argc)
                val = argv[++*i];
        if (o->type == CLI_SWITCH && val)
                return cli_fail(CLI_USAGE, "%s takes no value", o->name);
        if (o->type != CLI_SWITCH && !val)
                return cli_fail(CLI_USAGE, "%s expects a value", o->name);
        return cli_set_opt(cli, o, val, argc);
}

/* Sorts argv[first..] into setv (what dconf reads: the settings' flags, -X, --help)
 * and the subcommand's options. Returns -1 to go on, or the exit status. */
static int cli_sort_args(struct cli *cli, int first, int argc, char **argv, char **setv,
                         int *setc)
{
        for (int i = first; i < argc; i++) {
                const char *arg = argv[i];
                const struct dconf_opt *s;
                int rc;
                if (cli_is_help(arg)) {
                        setv[(*setc)++] = argv[i];
                } else if (!strncmp(arg, "-X", 2)) {
                        if (!cli->cmd->kafka)
                                return cli_fail(CLI_USAGE, "-X: this command has no "
                                                           "Kafka client");
                        setv[(*setc)++] = argv[i];
                        if (!arg[2] && i + 1 < argc)
                                setv[(*setc)++] = argv[++i];
                } else if ((s = cli_setting(cli->cmd, arg))) {
                        setv[(*setc)++] = argv[i];
                        if (!strchr(arg, '=') && s->type != DCONF_BOOL && i + 1 < argc)
                                setv[(*setc)++] = argv[++i];
                } else if ((rc = cli_take_opt(cli, argc, argv, &i))) {
                        return rc;
                }
        }
        return -1;
}

/* Loads the settings: defaults, the environment, then the flags in setv. */
static int cli_load(struct cli *cli, int setc, char **setv)
{
        const struct cli_cmd *cmd = cli->cmd;
        char err[512];

        switch (dconf_load(cmd->settings, cmd->nsettings, cli->cfg, setc, setv, environ,
                           cmd->usage, &cli->props, err, sizeof(err))) {
        case DCONF_HELP:
                return 0;
        case DCONF_ERROR:
                return cli_fail(CLI_USAGE, "bad setting: %s", err);
        case DCONF_OK:
                break;
        }
        if (cmd->kafka && dkafka_check_props(&cli->props, err, sizeof(err)))
                return cli_fail(CLI_USAGE, "bad setting: %s", err);
        snprintf(cli_prog, sizeof(cli_prog), "%.*s", (int)strcspn(cmd->name, " "),
                 cmd->name);
        dlog_init(cli_prog,
                  (enum dlog_level) * (int *)((char *)cli->cfg + cmd->log_level_off));
        return -1;
}

int cli_start(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv,
              void *cfg, void *opts)
{
        char **setv;
        int setc = 1, first = 2, rc;

        memset(cli, 0, sizeof(*cli));
        cli->cmd  = cmd;
        cli->cfg  = cfg;
        cli->opts = opts;
        cli->sub  = -1;
        cli_name  = cmd->name;
        for (int i = 0; argc > 1 && cmd->subs[i] && cli->sub < 0; i++)
                if (!strcmp(argv[1], cmd->subs[i]))
                        cli->sub = i;
        if (!cmd->subs[0]) /* a command without subcommands: options from argv[1] */
                first = 1;
        else if (cli->sub < 0 && !(argc > 1 && cli_is_help(argv[1]))) {
                if (argc > 1)
                        cli_fail(CLI_USAGE, "%s: unknown command", argv[1]);
                fprintf(stderr, "usage: %s\n", cmd->usage);
                return CLI_USAGE;
        } else if (cli->sub < 0) /* --help or --version first: dconf answers it */
                return cli_load(cli, argc, argv);
        setv = calloc((size_t)argc + 1, sizeof(*setv));
        if (!setv)
                return cli_fail(CLI_FAIL, "out of memory");
        setv[0] = argv[0];
        rc      = cli_sort_args(cli, first, argc, argv, setv, &setc);
        if (rc < 0)
                rc = cli_load(cli, setc, setv);
        free(setv);
        return rc;
}

void cli_end(struct cli *cli)
{
        const struct cli_cmd *cmd = cli->cmd;

        dgql_destroy(cli->gql);
        cli->gql = NULL;
        dsecrets_destroy(cli->api_key);
        cli->api_key = NULL;
        if (cli->curl_ready)
                curl_global_cleanup();
        cli->curl_ready = 0;
        for (size_t i = 0; i < cmd->nopts; i++) {
                if (cmd->opts[i].type == CLI_REPEAT) {
                        struct cli_texts *t =
                            (struct cli_texts *)((char *)cli->opts + cmd->opts[i].off);
                        free(t->v);
                        t->v = NULL;
                        t->n = 0;
                }
        }
        dconf_props_free(&cli->props);
        dconf_free(cmd->settings, cmd->nsettings, cli->cfg);
}

int cli_api_client(struct cli *cli, struct cli_api *api)
{
        struct dgql_config gc;
        char err[512];

        cli->api_key = dstartup_secrets_load(&api->key, api->key_file, "DURO_API_KEY",
                                             "DURO_API_KEY_FILE", "Duro API key", err,
                                             sizeof(err));
        if (!cli->api_key)
                return cli_fail(CLI_USAGE, "bad setting: %s", err);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        cli->curl_ready = 1;
        memset(&gc, 0, sizeof(gc));
        gc.url          = api->url;
        gc.api_key      = cli->api_key;
        gc.organization = api->org;
        gc.library      = api->lib;
        gc.timeout_ms   = (long)api->timeout_ms;
        gc.concurrency  = 1;
        gc.rate_per_s   = api->rate;
        cli->gql        = dgql_new(&gc, err, sizeof(err));
        if (!cli->gql)
                return cli_fail(CLI_FAIL, "%s", err);
        return 0;
}

int cli_api_request(struct cli *cli, const char *query, const char *opname,
                    json_t *variables, struct dgql_result *res)
{
        if (dgql_call(cli->gql, query, opname, variables, res))
                return cli_fail(CLI_FAIL, "out of memory");
        return 0;
}

int cli_api_report(const struct dgql_result *res)
{
        const char *what = res->outcome == DGQL_AUTH ? "authentication failed: "
                           : res->http_status == 0   ? "Duro API unreachable: "
                                                     : "Duro API error: ";

        return cli_fail(CLI_FAIL, "%s%s", what, res->error);
}

json_t *cli_api_call(struct cli *cli, const char *query, const char *opname,
                     json_t *variables)
{
        struct dgql_result res;
        json_t *data;

        if (cli_api_request(cli, query, opname, variables, &res))
                return NULL;
        if (res.outcome != DGQL_OK) {
                cli_api_report(&res);
                dgql_result_clear(&res);
                return NULL;
        }
        data     = res.data;
        res.data = NULL;
        dgql_result_clear(&res);
        return data;
}

/* Makes the client of conf (taken). bad: conf is NULL or one of its properties was
 * refused, err says why, and bad_status is the exit status for that. Returns 0 or the
 * exit status. */
static int cli_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, int bad,
                         int bad_status, char *err, size_t errsize, rd_kafka_t **out)
{
        if (bad) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return cli_fail(bad_status, "bad setting: %s", err);
        }
        *out = rd_kafka_new(type, conf, err, errsize);
        if (*out)
                return 0;
        rd_kafka_conf_destroy(conf);
        return cli_fail(CLI_FAIL, "cannot create the %s: %s",
                        type == RD_KAFKA_PRODUCER ? "producer" : "consumer", err);
}

/* A consumer for assign() and watermarks (it never commits), with the isolation
 * level given and partition EOF events on. */
static int cli_consumer_of(const struct cli *cli, const char *bootstrap,
                           const char *client_id, const char *group,
                           const char *isolation, rd_kafka_t **out)
{
        char err[512];
        rd_kafka_conf_t *conf = dkafka_conf_new(bootstrap, client_id, &cli->props,
                                                DCONF_SCOPE_CONSUMER, err, sizeof(err));
        int bad =
            !conf || dkafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
            dkafka_conf_set(conf, "isolation.level", isolation, err, sizeof(err)) ||
            dkafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
            dkafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
        int rc = cli_kafka_new(RD_KAFKA_CONSUMER, conf, bad, CLI_USAGE, err,
                               sizeof(err), out);

        if (!rc)
                rd_kafka_poll_set_consumer(*out);
        return rc;
}

int cli_consumer(const struct cli *cli, const char *bootstrap, const char *client_id,
                 const char *group, rd_kafka_t **out)
{
        return cli_consumer_of(cli, bootstrap, client_id, group, "read_committed", out);
}

int cli_watermarks(const struct cli *cli, const char *bootstrap, const char *client_id,
                   const char *group, rd_kafka_t **out)
{
        return cli_consumer_of(cli, bootstrap, client_id, group, "read_uncommitted",
                               out);
}

int cli_producer(const struct cli *cli, const char *bootstrap, const char *client_id,
                 const char *transactional_id, rd_kafka_t **out)
{
        return cli_producer_timeout(cli, bootstrap, client_id, transactional_id, 0,
                                    out);
}

/* A delivery report callback that does nothing: a failed record fails the commit
 * anyway. With one set, each report wakes the poll inside commit_transaction's flush,
 * which otherwise waits out its 10 ms slices (the commit of every transaction). */
static void cli_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)m;
        (void)opaque;
}

int cli_producer_timeout(const struct cli *cli, const char *bootstrap,
                         const char *client_id, const char *transactional_id,
                         long txn_timeout_ms, rd_kafka_t **out)
{
        char err[512], ms[32];
        rd_kafka_conf_t *conf = dkafka_conf_new(bootstrap, client_id, &cli->props,
                                                DCONF_SCOPE_PRODUCER, err, sizeof(err));
        int bad               = !conf ||
                  dkafka_conf_transactional(conf, transactional_id, err, sizeof(err));

        if (conf)
                rd_kafka_conf_set_dr_msg_cb(conf, cli_dr_cb);
        snprintf(ms, sizeof(ms), "%ld", txn_timeout_ms);
        if (!bad && txn_timeout_ms > 0)
                bad = dkafka_conf_set(conf, "transaction.timeout.ms", ms, err,
                                      sizeof(err));
        return cli_kafka_new(RD_KAFKA_PRODUCER, conf, bad, CLI_FAIL, err, sizeof(err),
                             out);
}

/* Assigns to c the partitions of topic that hold something to read, each from the
 * offset of time since_ms (-1: the start; looked up on ends when given, so that a
 * transaction still open cannot make it skip what follows it), and notes their end
 * offsets now in *end (malloc'd, indexed by partition, *np + 1 entries; -1 for a
 * partition with nothing to read). Returns 0 or the exit status. */
static int cli_read_assign(rd_kafka_t *c, rd_kafka_t *ends, const char *topic,
                           int64_t since_ms, long timeout_ms, int64_t **end, int *np)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *l, *a;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(c, 0, rkt, &md, (int)timeout_ms);
        if (err || md->topic_cnt != 1 || md->topics[0].err) {
                if (!err)
                        err = md->topic_cnt == 1 ? md->topics[0].err
                                                 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
                if (md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                return cli_fail(CLI_FAIL, "cannot read the topic %s: %s", topic,
                                rd_kafka_err2str(err));
        }
        *np  = md->topics[0].partition_cnt;
        l    = rd_kafka_topic_partition_list_new(*np > 0 ? *np : 1);
        *end = calloc((size_t)*np + 1, sizeof(**end));
        for (int i = 0; i < *np && *end; i++) {
                int32_t p = md->topics[0].partitions[i].id;
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                    since_ms >= 0 ? since_ms : RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (!*end || cli_dlq_ends(ends ? ends : c, l, *end, *np)) {
                rd_kafka_topic_partition_list_destroy(l);
                return *end ? CLI_FAIL : cli_fail(CLI_FAIL, "out of memory");
        }
        if (since_ms >= 0 &&
            (err = rd_kafka_offsets_for_times(ends ? ends : c, l, (int)timeout_ms))) {
                rd_kafka_topic_partition_list_destroy(l);
                return cli_fail(CLI_FAIL,
                                "cannot look up the offsets of %s by time: %s", topic,
                                rd_kafka_err2str(err));
        }
        a = rd_kafka_topic_partition_list_new(l->cnt > 0 ? l->cnt : 1);
        for (int i = 0; i < l->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &l->elems[i];
                int32_t p                            = tp->partition;
                if (tp->err || (since_ms >= 0 && tp->offset < -1)) {
                        rd_kafka_topic_partition_list_destroy(a);
                        rd_kafka_topic_partition_list_destroy(l);
                        return cli_fail(
                            CLI_FAIL,
                            "cannot look up the offset of %s [%d] by time: %s", topic,
                            (int)p, rd_kafka_err2str(tp->err));
                }
                if (p < 0 || p > *np)
                        continue;
                /* nothing to read: empty, or no record at or after since_ms */
                if ((*end)[p] == 0 || (since_ms >= 0 && tp->offset == -1) ||
                    (since_ms >= 0 && tp->offset >= (*end)[p]))
                        (*end)[p] = -1;
                else
                        rd_kafka_topic_partition_list_add(a, topic, p)->offset =
                            tp->offset;
        }
        rd_kafka_assign(c, a);
        rd_kafka_topic_partition_list_destroy(a);
        rd_kafka_topic_partition_list_destroy(l);
        return 0;
}

atomic_int cli_stop;

static void cli_on_signal(int sig)
{
        (void)sig;
        atomic_store(&cli_stop, 1);
}

void cli_catch_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = cli_on_signal; /* no SA_RESTART: sleeps end early */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

int cli_sleep(long ms, atomic_int *cancel)
{
        int64_t due = dtime_mono_ms() + ms;

        for (int64_t now = dtime_mono_ms(); now < due; now = dtime_mono_ms()) {
                long slice         = due - now < 200 ? (long)(due - now) : 200;
                struct timespec ts = {0, slice * 1000000L};
                if (atomic_load(&cli_stop) || (cancel && atomic_load(cancel)))
                        break;
                nanosleep(&ts, NULL);
        }
        return atomic_load(&cli_stop) || (cancel && atomic_load(cancel)) ? -1 : 0;
}

int cli_always_ready(void *opaque, char *reason, size_t reasonsize)
{
        (void)opaque;
        (void)reason;
        (void)reasonsize;
        return 1;
}

json_t *cli_connection(json_t *v)
{
        const char *name;
        json_t *c;

        if (!json_is_object(v))
                return NULL;
        if (json_is_array(json_object_get(v, "edges")) &&
            json_is_object(json_object_get(v, "pageInfo")))
                return v;
        json_object_foreach(v, name, c)
        {
                json_t *found = cli_connection(c);
                if (found)
                        return found;
        }
        return NULL;
}

rd_kafka_error_t *cli_commit_txn(rd_kafka_t *p, int timeout_ms, int attempts)
{
        rd_kafka_error_t *error = rd_kafka_commit_transaction(p, timeout_ms);

        for (int again = 0;
             error && again < attempts && rd_kafka_error_is_retriable(error) &&
             !rd_kafka_error_txn_requires_abort(error);
             again++) {
                rd_kafka_error_destroy(error);
                error = rd_kafka_commit_transaction(p, timeout_ms);
        }
        return error;
}

void cli_close_kafka(rd_kafka_t *p, rd_kafka_t *c, rd_kafka_t *w, int abort_ms)
{
        if (p) {
                rd_kafka_error_t *error = rd_kafka_abort_transaction(p, abort_ms);
                if (error)
                        rd_kafka_error_destroy(error); /* none was open */
                rd_kafka_destroy(p);
        }
        if (c) {
                rd_kafka_consumer_close(c);
                rd_kafka_destroy(c);
        }
        if (w)
                rd_kafka_destroy(w);
}

rd_kafka_error_t *cli_abort_txn(rd_kafka_t *p, int timeout_ms, int attempts)
{
        rd_kafka_error_t *error = rd_kafka_abort_transaction(p, timeout_ms);

        for (int again = 0;
             error && again < attempts && rd_kafka_error_is_retriable(error); again++) {
                rd_kafka_error_destroy(error);
                error = rd_kafka_abort_transaction(p, timeout_ms);
        }
        return error;
}

/* Marks partition p of c read to its end: no more fetching of it. */
static void cli_read_done(rd_kafka_t *c, const char *topic, int32_t p, int64_t *end,
                          int *open)
{
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(one, topic, p);
        rd_kafka_pause_partitions(c, one);
        rd_kafka_topic_partition_list_destroy(one);
        end[p] = -1;
        (*open)--;
}

int cli_read_topic(rd_kafka_t *c, rd_kafka_t *ends, const char *topic, int64_t since_ms,
                   long timeout_ms, cli_record_fn *fn, void *opaque)
{
        int64_t *end = NULL, moved;
        int open = 0, np = 0, rc;

        rc = cli_read_assign(c, ends, topic, since_ms, timeout_ms, &end, &np);
        for (int p = 0; !rc && p < np; p++)
                open += end[p] >= 0;
        moved = dtime_mono_ms();
        while (!rc && open > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
                int inside;
                if (atomic_load(&cli_stop)) {
                        rd_kafka_message_destroy(m);
                        rc = CLI_FAIL; /* the command says why */
                        break;
                }
                if (!m) {
                        /* timeout_ms without anything on a partition still open */
                        if (dtime_mono_ms() - moved > timeout_ms)
                                rc = cli_fail(CLI_FAIL,
                                              "no progress reading %s for %ld s (a "
                                              "transaction left open?)",
                                              topic, timeout_ms / 1000);
                        continue;
                }
                inside = m->partition >= 0 && m->partition <= np;
                if (inside && end[m->partition] >= 0)
                        moved = dtime_mono_ms();
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* read_committed stops at the last stable offset: with ends
                         * from the high watermark, an end below it is not the end
                         * (an open transaction holds back what follows) */
                        if (inside && end[m->partition] >= 0 &&
                            (!ends || m->offset >= end[m->partition]))
                                cli_read_done(c, topic, m->partition, end, &open);
                        rd_kafka_message_destroy(m);
                } else if (m->err) {
                        rc = cli_fail(CLI_FAIL, "reading %s: %s", topic,
                                      rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                } else if (!inside || end[m->partition] < 0 ||
                           m->offset >= end[m->partition]) {
                        if (inside && end[m->partition] >= 0) /* past the end seen */
                                cli_read_done(c, topic, m->partition, end, &open);
                        rd_kafka_message_destroy(m);
                } else {
                        int last  = m->offset + 1 >= end[m->partition];
                        int32_t p = m->partition;
                        rc        = fn(opaque, m);
                        if (!rc && last && end[p] >= 0)
                                cli_read_done(c, topic, p, end, &open);
                }
        }
        free(end);
        rd_kafka_assign(c, NULL);
        return rc;
}

int cli_parse_time(const char *s, int64_t *ms)
{
        char *end;
        long long n;

        if (!dtime_parse_rfc3339(s, strlen(s), ms))
                return 0;
        n = strtoll(s, &end, 10);
        if (end == s || n < 0 || end[0] == '\0' || end[1] != '\0')
                return -1;
        switch (*end) {
        case 's':
                break;
        case 'm':
                n *= 60;
                break;
        case 'h':
                n *= 3600;
                break;
        case 'd':
                n *= 86400;
                break;
        default:
                return -1;
        }
        *ms = dtime_now_ms() - n * 1000;
        return 0;
}

void cli_print_json(const json_t *v)
{
        char *s = json_dumps(v, JSON_INDENT(2));

        if (s)
                printf("%s\n", s);
        free(s);
}
