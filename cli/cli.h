/* cli.h - what the admin commands (`duro-bridge webhooks ...`, `duro-enricher dlq ...`)
 * share: one way to fail (one line on stderr naming the command, exit status 1 or 2),
 * one way to read the command line (the subcommand, its own options, and the settings
 * table loaded from the environment and from its flags through dconf, so that every
 * setting listed by --help works as a flag too), and the set-up of what they talk to:
 * the Duro API client with its key, a read_committed consumer, a transactional
 * producer.
 *
 * A command is a struct cli_cmd (its settings table and its options table) and a
 * function that calls cli_start(), runs the subcommand and calls cli_end():
 *
 *     struct my_settings cfg = {0};
 *     struct my_options a = {.limit = 20};   (the options' defaults)
 *     struct cli cli;
 *     int rc = cli_start(&cli, &my_cmd, argc, argv, &cfg, &a);
 *     if (rc < 0)
 *             rc = run(&cli, &cfg, &a);
 *     cli_end(&cli);
 *     return rc;
 *
 * Exit status: 0 on success, 1 (CLI_FAIL) when the command failed, 2 (CLI_USAGE) on bad
 * usage or a bad setting. Functions here return 0 or the exit status, after printing
 * the one line that says why. Secrets (the API key) come from the environment or a
 * file, never from argv, and appear in no message.
 *
 * Main thread only: the commands are single-threaded, and the command's name for
 * messages is kept in a static by cli_start(). */
#ifndef CLI_H
#define CLI_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dconf.h"
#include "dgql.h"
#include "dsecrets.h"

#define CLI_FAIL  1 /* the command failed */
#define CLI_USAGE 2 /* bad usage or a bad setting */

/* The commands (argv[0] is the command's word: "webhooks", "dlq"). */
int cli_webhooks_main(int argc, char **argv);
int cli_dlq_main(int argc, char **argv);
int cli_snapshot_main(int argc, char **argv);
int cli_reconcile_main(int argc, char **argv);

/* An option of the subcommand itself (not a setting), e.g. --json or --limit N. */
enum cli_opt_type {
        CLI_SWITCH, /* int, set to 1 */
        CLI_TEXT,   /* const char *, borrowed from argv */
        CLI_NUMBER, /* long, between min and max */
        CLI_REPEAT, /* struct cli_texts: every value of a repeatable option */
};

struct cli_opt {
        const char *name; /* "--json"; NULL: the one argument without dashes (an ID) */
        enum cli_opt_type type;
        size_t off;    /* offsetof() the field in the command's options struct */
        long min, max; /* CLI_NUMBER's bounds */
};

/* The values of a CLI_REPEAT option: v is owned by the struct cli (freed by
 * cli_end()), the strings are borrowed from argv. */
struct cli_texts {
        const char **v;
        size_t n;
};

#define CLI_NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The tables of a struct cli_cmd initialiser: its subcommands, settings and options. */
#define CLI_TABLES(subs_, settings_, opts_)                                            \
        .subs = subs_, .settings = settings_, .nsettings = CLI_NELEMS(settings_),      \
        .opts = opts_, .nopts = CLI_NELEMS(opts_)

struct cli_cmd {
        const char *name;        /* "duro-bridge webhooks": starts every message; its
                                    first word is the log's prog field */
        const char *usage;       /* the usage lines, without "usage: ", for --help */
        const char *const *subs; /* the subcommands, NULL-terminated ({NULL}: none,
                                    the options start at argv[1]) */
        const struct dconf_opt *settings;
        size_t nsettings;
        size_t log_level_off;       /* offsetof() the settings' DCONF_LOGLEVEL int */
        const struct cli_opt *opts; /* none may share a name with a setting's flag */
        size_t nopts;
        int kafka; /* 1: -X prop=value and DURO_RDKAFKA_* apply (and are checked) */
};

/* One run of a command. Every field is set by cli_start(); what it points to that is
 * not borrowed is freed by cli_end(). */
struct cli {
        const struct cli_cmd *cmd;
        int sub;                  /* index in cmd->subs of the subcommand, -1: none */
        void *cfg;                /* the settings struct (borrowed; strings owned) */
        void *opts;               /* the options struct (borrowed) */
        struct dconf_props props; /* passthrough librdkafka properties (owned) */
        struct dsecrets *api_key; /* owned, from cli_api_client() */
        struct dgql *gql;         /* owned, from cli_api_client() */
        int curl_ready;           /* 1 after curl_global_init() */
};

/* Prints "<command name>: <message>" and a newline on stderr; returns status. */
__attribute__((format(printf, 2, 3))) int cli_fail(int status, const char *fmt, ...);

/* Reads argv (argv[0] is the command's word, argv[1] the subcommand): the settings'
 * flags (--api-url URL or --api-url=URL, -X prop=value for a Kafka command) go, after
 * the environment, into cfg through cmd->settings; every other argument is one of
 * cmd->opts, stored into opts (the caller sets the options' defaults there first;
 * cfg starts zeroed). --help (anywhere) prints the usage and the settings table.
 * Returns -1 to go on, or the exit status (0 after --help or --version). Call
 * cli_end() in every case. */
int cli_start(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv,
              void *cfg, void *opts);

/* Frees what cli_start() and cli_api_client() made, and the settings' strings. */
void cli_end(struct cli *cli);

/* The Duro API settings of a command that talks to Duro: a member of its settings
 * struct, filled by the table rows CLI_API_OPTS gives. */
struct cli_api {
        char *url;
        char *key; /* DURO_API_KEY (environment only); wiped by cli_api_client() */
        char *key_file;
        char *org; /* x-organization, may be NULL */
        char *lib; /* x-library, may be NULL */
        long long timeout_ms;
        double rate; /* requests started per second at most, 0: no limit (set by the
                        command, not a row of CLI_API_OPTS) */
};

#define CLI_API_OPT(env, flag, type_, def, min, max, t, m, field, fl, help)            \
        {                                                                              \
                env, flag, type_, def, min, max, offsetof(t, m.field), fl, help        \
        }
#define CLI_API_OPTS(t, m)                                                             \
        CLI_API_OPT("DURO_API_URL", "api-url", DCONF_STRING,                           \
                    "https://api.durohub.com/graphql", 0, 0, t, m, url, 0,             \
                    "Duro GraphQL endpoint"),                                          \
            CLI_API_OPT("DURO_API_KEY", NULL, DCONF_STRING, NULL, 0, 0, t, m, key,     \
                        DCONF_F_SECRET, "Duro API key"),                               \
            CLI_API_OPT("DURO_API_KEY_FILE", "api-key-file", DCONF_STRING, NULL, 0, 0, \
                        t, m, key_file, 0, "file holding the API key"),                \
            CLI_API_OPT("DURO_API_ORGANIZATION", "api-organization", DCONF_STRING,     \
                        NULL, 0, 0, t, m, org, 0, "x-organization header"),            \
            CLI_API_OPT("DURO_API_LIBRARY", "api-library", DCONF_STRING, NULL, 0, 0,   \
                        t, m, lib, 0, "x-library header"),                             \
            CLI_API_OPT("DURO_GRAPHQL_TIMEOUT_MS", "graphql-timeout-ms", DCONF_INT,    \
                        "10000", 100, 600000, t, m, timeout_ms, 0,                     \
                        "timeout of one request")

/* Loads the API key (from DURO_API_KEY or the key file; status 2 when there is none
 * or it cannot be read) and makes cli->gql, a client of one request at a time (owned
 * by cli: cli_end() destroys it; it borrows api's strings). Returns 0 or the exit
 * status. */
int cli_api_client(struct cli *cli, struct cli_api *api);

/* Runs one GraphQL request on cli->gql into *res, whatever its outcome (the caller
 * clears it with dgql_result_clear()). Returns 0, or the exit status after saying
 * why it could not even be sent (res then holds nothing to clear). */
int cli_api_request(struct cli *cli, const char *query, const char *opname,
                    json_t *variables, struct dgql_result *res);

/* Says why the request of res failed (authentication, unreachable, an API error) and
 * returns the exit status. */
int cli_api_report(const struct dgql_result *res);

/* Runs one GraphQL request on cli->gql. Returns its "data" (the caller owns it:
 * json_decref()), or NULL after printing why (authentication, unreachable, an API
 * error). */
json_t *cli_api_call(struct cli *cli, const char *query, const char *opname,
                     json_t *variables);

/* A consumer of bootstrap for reading topics to an end (*out, the caller's:
 * rd_kafka_consumer_close() and rd_kafka_destroy(), after the messages it gave):
 * group.id group (for assign(), it never commits), read_committed, no auto commit,
 * partition EOF events on, the consumer-scope passthrough properties. Returns 0 or
 * the exit status (2 for a refused property). */
int cli_consumer(const struct cli *cli, const char *bootstrap, const char *client_id,
                 const char *group, rd_kafka_t **out);

/* A producer of bootstrap that writes in transactions (dkafka_conf_transactional()
 * with transactional_id, and the producer-scope passthrough properties); its
 * transactions are not initialised yet. *out is the caller's (rd_kafka_destroy()).
 * Returns 0 or the exit status (1, also for a refused property, as the redrive always
 * did). */
int cli_producer(const struct cli *cli, const char *bootstrap, const char *client_id,
                 const char *transactional_id, rd_kafka_t **out);

/* cli_producer() with transaction.timeout.ms set to txn_timeout_ms, whatever -X said
 * (a short timeout bounds how long a killed command's open transaction holds
 * read_committed readers back). */
int cli_producer_timeout(const struct cli *cli, const char *bootstrap,
                         const char *client_id, const char *transactional_id,
                         long txn_timeout_ms, rd_kafka_t **out);

/* Called by cli_read_topic() for each record; takes m (destroys it or keeps it).
 * Returns 0 to go on, or an exit status to stop with. */
typedef int(cli_record_fn)(void *opaque, rd_kafka_message_t *m);

/* Reads every partition of topic with c (a cli_consumer()) from the offset of time
 * since_ms (-1: from the start) up to the end offsets seen when it starts, in offset
 * order per partition, calling fn for each record. The ends are c's own (the last
 * stable offsets: what is committed before any transaction still open), or, with
 * ends (a cli_watermarks() handle), the high watermarks: then it also waits for what
 * a transaction still open holds back, until that transaction ends. Returns 0, or
 * the exit status (after one line saying why: a missing topic, a partition that could
 * not be read, timeout_ms without anything on a partition not yet read, or fn's
 * status; nothing is said when cli_stop was set). Leaves c unassigned. */
int cli_read_topic(rd_kafka_t *c, rd_kafka_t *ends, const char *topic, int64_t since_ms,
                   long timeout_ms, cli_record_fn *fn, void *opaque);

/* Set (by a command's SIGINT/SIGTERM handler) to stop what runs: cli_read_topic()
 * returns CLI_FAIL at once, without a message. A lock-free atomic, safe in a signal
 * handler and read by any thread. */
extern atomic_int cli_stop;

/* Makes SIGINT and SIGTERM set cli_stop (without SA_RESTART, so sleeps end early). */
void cli_catch_signals(void);

/* Sleeps ms in slices of at most 200 ms, ending early when cli_stop or *cancel (may
 * be NULL) is set. Returns -1 when it ended early. Any thread. */
int cli_sleep(long ms, atomic_int *cancel);

/* A dadmin_ready_fn for a command: it is ready while it runs. */
int cli_always_ready(void *opaque, char *reason, size_t reasonsize);

/* The first Relay connection (an object with "edges" and "pageInfo") in v, borrowed;
 * where a query put it is the query's business. NULL when there is none. */
json_t *cli_connection(json_t *v);

/* commit_transaction, asked again (up to attempts more times) while it fails with a
 * retriable error that needs no abort (a commit that timed out is still under way).
 * Returns NULL or the last error (the caller's). */
rd_kafka_error_t *cli_commit_txn(rd_kafka_t *p, int timeout_ms, int attempts);

/* A command's end: aborts the transaction p may have open (a failure mid-write; not
 * left to hold read_committed readers back until transaction.timeout.ms) and destroys
 * p, closes and destroys the consumer c, destroys the watermarks handle w. Each may
 * be NULL. */
void cli_close_kafka(rd_kafka_t *p, rd_kafka_t *c, rd_kafka_t *w, int abort_ms);

/* abort_transaction, asked again (up to attempts more times) while retriable. Returns
 * NULL or the last error (the caller's). */
rd_kafka_error_t *cli_abort_txn(rd_kafka_t *p, int timeout_ms, int attempts);

/* A consumer that only answers watermark queries with the high watermarks
 * (read_uncommitted), for cli_read_topic()'s ends. *out is the caller's
 * (rd_kafka_destroy()). Returns 0 or the exit status. */
int cli_watermarks(const struct cli *cli, const char *bootstrap, const char *client_id,
                   const char *group, rd_kafka_t **out);

/* Parses a time given as RFC 3339 ("2024-12-20T10:30:00Z") or as an age before now
 * ("90s", "30m", "2h", "7d") into ms since the epoch. Returns 0 or -1. */
int cli_parse_time(const char *s, int64_t *ms);

/* Prints v as indented JSON and a newline on stdout. */
void cli_print_json(const json_t *v);

/* cli_dlq.c, exposed for its unit test: notes the end offset of each partition of l
 * (all of one topic) in end[partition] (end has np + 1 entries). Returns 0, or -1
 * after printing which partition could not be read (never a partition skipped as
 * empty). */
int cli_dlq_ends(rd_kafka_t *c, const rd_kafka_topic_partition_list_t *l, int64_t *end,
                 int np);

#endif
