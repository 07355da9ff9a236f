/* bridge_webhooks.c - `duro-bridge webhooks list|create|update|logs`: registering and
 * inspecting the Duro webhook from the command line, through Duro's GraphQL API
 * (the queries and mutations of Duro's webhook documentation). Tables for people,
 * --json for scripts; exit 0 on success, 1 with a one-line reason on any error, 2 on
 * bad usage. The API key comes from DURO_API_KEY or DURO_API_KEY_FILE, never argv. */
#include "../bridge/bridge.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dconf.h"
#include "dgql.h"
#include "dlog.h"
#include "dsecrets.h"

extern char **environ;

struct webhooks_config {
        char *api_url;
        char *api_key;
        char *api_key_file;
        char *api_org;
        char *api_lib;
        long long timeout_ms;
        int log_level;
};

#define WH_OPT(env, flag, type, def, min, max, field, fl, help)                        \
        {                                                                              \
                env, flag, type, def, min, max,                                        \
                    offsetof(struct webhooks_config, field), fl, help                  \
        }

static const struct dconf_opt webhooks_opts[] = {
    WH_OPT("DURO_API_URL", "api-url", DCONF_STRING, "https://api.durohub.com/graphql",
           0, 0, api_url, 0, "Duro GraphQL endpoint"),
    WH_OPT("DURO_API_KEY", NULL, DCONF_STRING, NULL, 0, 0, api_key, DCONF_F_SECRET,
           "Duro API key"),
    WH_OPT("DURO_API_KEY_FILE", "api-key-file", DCONF_STRING, NULL, 0, 0, api_key_file,
           0, "file holding the API key"),
    WH_OPT("DURO_API_ORGANIZATION", "api-organization", DCONF_STRING, NULL, 0, 0,
           api_org, 0, "x-organization header"),
    WH_OPT("DURO_API_LIBRARY", "api-library", DCONF_STRING, NULL, 0, 0, api_lib, 0,
           "x-library header"),
    WH_OPT("DURO_GRAPHQL_TIMEOUT_MS", "graphql-timeout-ms", DCONF_INT, "10000", 100,
           600000, timeout_ms, 0, "timeout of one request"),
    WH_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "warn", 0, 0, log_level, 0,
           "log level"),
};
#define WEBHOOKS_NOPTS (sizeof(webhooks_opts) / sizeof(webhooks_opts[0]))

static const char webhooks_usage[] =
    "usage: duro-bridge webhooks list [--json]\n"
    "       duro-bridge webhooks create --name NAME --url URL --events E1,E2 "
    "[--description TEXT] [--disabled] [--allow-http] [--json]\n"
    "       duro-bridge webhooks update ID [--events E1,E2] [--enable|--disable] "
    "[--url URL] [--name NAME] [--allow-http] [--json]\n"
    "       duro-bridge webhooks logs ID [--limit N] [--failed] [--json]\n"
    "environment: DURO_API_URL, DURO_API_KEY or DURO_API_KEY_FILE, "
    "DURO_API_ORGANIZATION, DURO_API_LIBRARY\n";

static const char q_list[] =
    "query DuroWebhooks { webhooks { get { id name description url events isEnabled "
    "createdAt } } }";
static const char q_create[] =
    "mutation DuroCreateWebhook($input: CreateWebhookInput!) { webhooks { "
    "create(input: $input) { id name description url events isEnabled createdAt "
    "secret } } }";
static const char q_update[] =
    "mutation DuroUpdateWebhook($ids: [ID!], $input: UpdateWebhookInput!) { webhooks "
    "{ update(filter: { ids: $ids }, input: $input) { id name description url events "
    "isEnabled createdAt } } }";
static const char q_logs[] =
    "query DuroWebhookLogs($id: ID!, $first: Int, $after: String) { webhooks { "
    "getLogs(webhookID: $id, orderBy: [{ createdAt: DESC }]) { connection(first: "
    "$first, after: $after) { edges { node { id event metadata responseCode "
    "isAcknowledged createdAt } } pageInfo { hasNextPage endCursor } } } } }";

/* Options of a subcommand. */
struct webhooks_args {
        const char *id, *name, *url, *events, *description;
        int json, disabled, enable, disable, allow_http, failed;
        long limit;
};

__attribute__((format(printf, 1, 2))) static int webhooks_fail(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "duro-bridge webhooks: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

static int webhooks_parse(int argc, char **argv, struct webhooks_args *a)
{
        memset(a, 0, sizeof(*a));
        a->limit = 20;
        for (int i = 0; i < argc; i++) {
                const char *o    = argv[i];
                const char **val = NULL;
                if (!strcmp(o, "--json"))
                        a->json = 1;
                else if (!strcmp(o, "--disabled"))
                        a->disabled = 1;
                else if (!strcmp(o, "--enable"))
                        a->enable = 1;
                else if (!strcmp(o, "--disable"))
                        a->disable = 1;
                else if (!strcmp(o, "--allow-http"))
                        a->allow_http = 1;
                else if (!strcmp(o, "--failed"))
                        a->failed = 1;
                else if (!strcmp(o, "--name"))
                        val = &a->name;
                else if (!strcmp(o, "--url"))
                        val = &a->url;
                else if (!strcmp(o, "--events"))
                        val = &a->events;
                else if (!strcmp(o, "--description"))
                        val = &a->description;
                else if (!strcmp(o, "--limit")) {
                        char *end;
                        if (i + 1 >= argc)
                                return webhooks_fail("--limit expects a number%s", "");
                        a->limit = strtol(argv[++i], &end, 10);
                        if (*end || a->limit < 1 || a->limit > 10000)
                                return webhooks_fail(
                                    "--limit %s: not a number from 1 to "
                                    "10000",
                                    argv[i]);
                } else if (o[0] != '-' && !a->id)
                        a->id = o;
                else
                        return webhooks_fail("%s: unknown option (see --help)", o);
                if (val) {
                        if (i + 1 >= argc)
                                return webhooks_fail("%s expects a value", o);
                        *val = argv[++i];
                }
        }
        if (a->enable && a->disable)
                return webhooks_fail("--enable and --disable%s together", " cannot go");
        return 0;
}

/* http(s) URL check: https required unless allowed. */
static int webhooks_check_url(const char *url, int allow_http)
{
        if (!strncmp(url, "https://", 8) && url[8])
                return 0;
        if (!strncmp(url, "http://", 7) && url[7]) {
                if (allow_http)
                        return 0;
                return webhooks_fail("--url %s: not HTTPS (Duro would send webhooks in "
                                     "clear text); add --allow-http to insist",
                                     url);
        }
        return webhooks_fail("--url %s: not an http(s) URL", url);
}

static json_t *webhooks_events(const char *list)
{
        json_t *arr   = json_array();
        const char *p = list;

        while (arr && *p) {
                size_t n = strcspn(p, ",");
                if (n) {
                        char *ev = strndup(p, n);
                        for (char *c = ev; c && *c; c++)
                                if (*c >= 'a' && *c <= 'z')
                                        *c = (char)(*c - 'a' + 'A');
                        if (ev)
                                json_array_append_new(arr, json_string(ev));
                        free(ev);
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return arr;
}

/* Runs a request; on success returns the data (owned) or NULL after printing why. */
static json_t *webhooks_call(struct dgql *c, const char *q, const char *op,
                             json_t *vars)
{
        struct dgql_result res;
        json_t *data;

        if (dgql_call(c, q, op, vars, &res)) {
                webhooks_fail("out of memory%s", "");
                return NULL;
        }
        if (res.outcome != DGQL_OK) {
                const char *what = res.outcome == DGQL_AUTH ? "authentication failed: "
                                   : res.http_status == 0   ? "Duro API unreachable: "
                                                            : "Duro API error: ";
                fprintf(stderr, "duro-bridge webhooks: %s%s\n", what, res.error);
                dgql_result_clear(&res);
                return NULL;
        }
        data     = res.data;
        res.data = NULL;
        dgql_result_clear(&res);
        return data;
}

static const char *webhooks_str(json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "";
}

static void webhooks_print_hooks(json_t *hooks, int json)
{
        size_t i, w[4] = {2, 4, 3, 6};
        json_t *h;

        if (json) {
                char *s = json_dumps(hooks, JSON_INDENT(2));
                if (s)
                        printf("%s\n", s);
                free(s);
                return;
        }
        json_array_foreach(hooks, i, h)
        {
                const char *cols[] = {webhooks_str(h, "id"), webhooks_str(h, "name"),
                                      webhooks_str(h, "url")};
                for (int k = 0; k < 3; k++)
                        if (strlen(cols[k]) > w[k])
                                w[k] = strlen(cols[k]);
        }
        printf("%-*s  %-*s  %-*s  %-7s  %-24s  %s\n", (int)w[0], "ID", (int)w[1],
               "NAME", (int)w[2], "URL", "ENABLED", "CREATED", "EVENTS");
        json_array_foreach(hooks, i, h)
        {
                char events[512] = "";
                size_t k, o = 0;
                json_t *ev;
                json_array_foreach(json_object_get(h, "events"), k, ev)
                {
                        int n = snprintf(events + o, sizeof(events) - o, "%s%s",
                                         k ? "," : "", json_string_value(ev));
                        if (n > 0 && (size_t)n < sizeof(events) - o)
                                o += (size_t)n;
                }
                printf("%-*s  %-*s  %-*s  %-7s  %-24s  %s\n", (int)w[0],
                       webhooks_str(h, "id"), (int)w[1], webhooks_str(h, "name"),
                       (int)w[2], webhooks_str(h, "url"),
                       json_is_true(json_object_get(h, "isEnabled")) ? "yes" : "no",
                       webhooks_str(h, "createdAt"), events);
        }
}

static int webhooks_list(struct dgql *c, const struct webhooks_args *a)
{
        json_t *data = webhooks_call(c, q_list, "DuroWebhooks", NULL);
        json_t *hooks;

        if (!data)
                return 1;
        hooks = json_object_get(json_object_get(data, "webhooks"), "get");
        if (!json_is_array(hooks)) {
                json_decref(data);
                return webhooks_fail("unexpected answer%s", "");
        }
        webhooks_print_hooks(hooks, a->json);
        json_decref(data);
        return 0;
}

static int webhooks_create(struct dgql *c, const struct webhooks_args *a)
{
        json_t *input, *vars, *data, *hook, *one;
        const char *secret;

        if (!a->name || !a->url || !a->events)
                return 2 *
                       webhooks_fail("create needs --name, --url and --events%s", "");
        if (webhooks_check_url(a->url, a->allow_http))
                return 1;
        input = json_pack("{s:s, s:s, s:o, s:b, s:s?}", "name", a->name, "url", a->url,
                          "events", webhooks_events(a->events), "isEnabled",
                          !a->disabled, "description", a->description);
        vars  = json_pack("{s:o}", "input", input);
        data  = webhooks_call(c, q_create, "DuroCreateWebhook", vars);
        json_decref(vars);
        if (!data)
                return 1;
        hook = json_object_get(json_object_get(data, "webhooks"), "create");
        if (!json_is_object(hook)) {
                json_decref(data);
                return webhooks_fail("unexpected answer%s", "");
        }
        secret = json_string_value(json_object_get(hook, "secret"));
        if (a->json) {
                char *s = json_dumps(hook, JSON_INDENT(2));
                if (s)
                        printf("%s\n", s);
                free(s);
        } else {
                one = json_array();
                json_array_append(one, hook);
                webhooks_print_hooks(one, 0);
                json_decref(one);
                if (secret) {
                        printf("\nsigning secret: %s\n", secret);
                        printf(
                            "Store it now (it is not shown again) in the bridge's "
                            "secrets file, one secret per line, e.g. a Kubernetes "
                            "Secret mounted as DURO_WEBHOOK_SECRETS_FILE; the bridge "
                            "re-reads that file when it changes.\n");
                }
        }
        json_decref(data);
        return 0;
}

static int webhooks_update(struct dgql *c, const struct webhooks_args *a)
{
        json_t *input, *vars, *data, *hooks;

        if (!a->id)
                return 2 * webhooks_fail("update needs the webhook ID%s", "");
        if (a->url && webhooks_check_url(a->url, a->allow_http))
                return 1;
        input = json_object();
        if (a->events)
                json_object_set_new(input, "events", webhooks_events(a->events));
        if (a->enable || a->disable)
                json_object_set_new(input, "isEnabled", json_boolean(a->enable));
        if (a->url)
                json_object_set_new(input, "url", json_string(a->url));
        if (a->name)
                json_object_set_new(input, "name", json_string(a->name));
        if (!json_object_size(input)) {
                json_decref(input);
                return 2 * webhooks_fail(
                               "update: nothing to change (give --events, --enable, "
                               "--disable, --url or --name)%s",
                               "");
        }
        vars = json_pack("{s:[s], s:o}", "ids", a->id, "input", input);
        data = webhooks_call(c, q_update, "DuroUpdateWebhook", vars);
        json_decref(vars);
        if (!data)
                return 1;
        hooks = json_object_get(json_object_get(data, "webhooks"), "update");
        if (!json_is_array(hooks) || json_array_size(hooks) == 0) {
                json_decref(data);
                return webhooks_fail("no webhook with id %s", a->id);
        }
        webhooks_print_hooks(hooks, a->json);
        json_decref(data);
        return 0;
}

static int webhooks_failed_delivery(json_t *log)
{
        json_t *code = json_object_get(log, "responseCode");
        json_int_t c = json_is_integer(code) ? json_integer_value(code) : 0;

        return !json_is_true(json_object_get(log, "isAcknowledged")) || c < 200 ||
               c > 299;
}

static int webhooks_logs(struct dgql *c, const struct webhooks_args *a)
{
        json_t *out;
        char *after = NULL;
        int rc = 0, pages = 0;

        if (!a->id)
                return 2 * webhooks_fail("logs needs the webhook ID%s", "");
        /* An unknown id is an error, not an empty list. */
        {
                json_t *data = webhooks_call(c, q_list, "DuroWebhooks", NULL);
                json_t *hooks, *h;
                size_t i;
                int found = 0;
                if (!data)
                        return 1;
                hooks = json_object_get(json_object_get(data, "webhooks"), "get");
                json_array_foreach(hooks, i, h) found |=
                    !strcmp(webhooks_str(h, "id"), a->id);
                json_decref(data);
                if (!found)
                        return webhooks_fail("no webhook with id %s", a->id);
        }
        out = json_array();
        if (!out)
                return webhooks_fail("out of memory%s", "");
        while ((long)json_array_size(out) < a->limit && pages++ < 1000) {
                json_t *vars = json_pack("{s:s, s:i, s:s?}", "id", a->id, "first", 50,
                                         "after", after);
                json_t *data = webhooks_call(c, q_logs, "DuroWebhookLogs", vars);
                json_t *conn, *edges, *edge, *pi;
                size_t i;
                json_decref(vars);
                if (!data) {
                        rc = 1;
                        break;
                }
                conn = json_object_get(
                    json_object_get(json_object_get(data, "webhooks"), "getLogs"),
                    "connection");
                edges = json_object_get(conn, "edges");
                if (!json_is_array(edges)) {
                        json_decref(data);
                        rc = webhooks_fail("no webhook with id %s (or an unexpected "
                                           "answer)",
                                           a->id);
                        break;
                }
                json_array_foreach(edges, i, edge)
                {
                        json_t *node = json_object_get(edge, "node");
                        if ((long)json_array_size(out) >= a->limit)
                                break;
                        if (!a->failed || webhooks_failed_delivery(node))
                                json_array_append(out, node);
                }
                pi = json_object_get(conn, "pageInfo");
                free(after);
                after = NULL;
                if (json_is_true(json_object_get(pi, "hasNextPage")) &&
                    json_string_value(json_object_get(pi, "endCursor")))
                        after =
                            strdup(json_string_value(json_object_get(pi, "endCursor")));
                json_decref(data);
                if (!after)
                        break;
        }
        free(after);
        if (!rc && a->json) {
                char *s = json_dumps(out, JSON_INDENT(2));
                if (s)
                        printf("%s\n", s);
                free(s);
        } else if (!rc) {
                size_t i;
                json_t *l;
                printf("%-24s  %-28s  %-4s  %-5s  %s\n", "CREATED", "EVENT", "CODE",
                       "ACKED", "ID");
                json_array_foreach(out, i, l)
                {
                        json_t *code  = json_object_get(l, "responseCode");
                        char cbuf[16] = "-";
                        if (json_is_integer(code))
                                snprintf(cbuf, sizeof(cbuf), "%lld",
                                         (long long)json_integer_value(code));
                        printf("%-24s  %-28s  %-4s  %-5s  %s\n",
                               webhooks_str(l, "createdAt"), webhooks_str(l, "event"),
                               cbuf,
                               json_is_true(json_object_get(l, "isAcknowledged"))
                                   ? "yes"
                                   : "no",
                               webhooks_str(l, "id"));
                }
        }
        json_decref(out);
        return rc;
}

int bridge_webhooks_main(int argc, char **argv)
{
        static char *noargs[] = {(char *)"duro-bridge", NULL};
        struct webhooks_config cfg;
        struct webhooks_args a;
        struct dconf_props props;
        struct dsecrets *key;
        struct dgql_config gc;
        struct dgql *c;
        char err[512];
        int rc;

        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(webhooks_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        memset(&cfg, 0, sizeof(cfg));
        if (dconf_load(webhooks_opts, WEBHOOKS_NOPTS, &cfg, 1, noargs, environ,
                       "duro-bridge webhooks", &props, err, sizeof(err)) != DCONF_OK) {
                fprintf(stderr, "duro-bridge webhooks: bad setting: %s\n", err);
                return 2;
        }
        dconf_props_free(&props);
        dlog_init("duro-bridge", (enum dlog_level)cfg.log_level);
        if (webhooks_parse(argc - 2, argv + 2, &a)) {
                dconf_free(webhooks_opts, WEBHOOKS_NOPTS, &cfg);
                return 2;
        }
        key = dsecrets_new(cfg.api_key, cfg.api_key_file, err, sizeof(err));
        if (cfg.api_key)
                memset(cfg.api_key, 0, strlen(cfg.api_key));
        if (!key) {
                fprintf(stderr, "duro-bridge webhooks: %s\n",
                        cfg.api_key_file && *cfg.api_key_file
                            ? err
                            : "no Duro API key: set DURO_API_KEY or "
                              "DURO_API_KEY_FILE");
                dconf_free(webhooks_opts, WEBHOOKS_NOPTS, &cfg);
                return 2;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        memset(&gc, 0, sizeof(gc));
        gc.url          = cfg.api_url;
        gc.api_key      = key;
        gc.organization = cfg.api_org;
        gc.library      = cfg.api_lib;
        gc.timeout_ms   = (long)cfg.timeout_ms;
        gc.concurrency  = 1;
        c               = dgql_new(&gc, err, sizeof(err));
        if (!c) {
                rc = webhooks_fail("%s", err);
        } else if (!strcmp(argv[1], "list")) {
                rc = webhooks_list(c, &a);
        } else if (!strcmp(argv[1], "create")) {
                rc = webhooks_create(c, &a);
        } else if (!strcmp(argv[1], "update")) {
                rc = webhooks_update(c, &a);
        } else if (!strcmp(argv[1], "logs")) {
                rc = webhooks_logs(c, &a);
        } else {
                fprintf(stderr, "duro-bridge webhooks: %s: unknown command\n%s",
                        argv[1], webhooks_usage);
                rc = 2;
        }
        dgql_destroy(c);
        dsecrets_destroy(key);
        dconf_free(webhooks_opts, WEBHOOKS_NOPTS, &cfg);
        curl_global_cleanup();
        return rc;
}
