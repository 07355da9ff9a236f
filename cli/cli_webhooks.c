/* cli_webhooks.c - `duro-bridge webhooks list|create|update|logs`: registering and
 * inspecting the Duro webhook from the command line, through Duro's GraphQL API
 * (the queries and mutations of Duro's webhook documentation). Tables for people,
 * --json for scripts; exit 0 on success, 1 with a one-line reason on any error, 2 on
 * bad usage. The API key comes from DURO_API_KEY or DURO_API_KEY_FILE, never argv;
 * the other settings also from their flags (--api-url URL, ...: see --help). */
#include "cli.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char webhooks_usage[] =
    "duro-bridge webhooks list [--json]\n"
    "       duro-bridge webhooks create --name NAME --url URL --events E1,E2 "
    "[--description TEXT] [--disabled] [--allow-http] [--json]\n"
    "       duro-bridge webhooks update ID [--events E1,E2] [--enable|--disable] "
    "[--url URL] [--name NAME] [--allow-http] [--json]\n"
    "       duro-bridge webhooks logs ID [--limit N] [--failed] [--json]\n"
    "settings: DURO_API_URL, DURO_API_KEY or DURO_API_KEY_FILE, "
    "DURO_API_ORGANIZATION, DURO_API_LIBRARY, or their flags (--help lists them; "
    "the key never on the command line)";

struct webhooks_config {
        struct cli_api api;
        int log_level;
};

static const struct dconf_opt webhooks_settings[] = {
    CLI_API_OPTS(struct webhooks_config, api),
    {"DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "warn", 0, 0,
     offsetof(struct webhooks_config, log_level), 0, "log level"},
};

/* Options of a subcommand. */
struct webhooks_args {
        const char *id, *name, *url, *events, *description;
        int json, disabled, enable, disable, allow_http, failed;
        long limit;
};

#define WH_ARG(name, type, field, min, max)                                            \
        {                                                                              \
                name, type, offsetof(struct webhooks_args, field), min, max            \
        }

static const struct cli_opt webhooks_opts[] = {
    WH_ARG(NULL, CLI_TEXT, id, 0, 0),
    WH_ARG("--json", CLI_SWITCH, json, 0, 0),
    WH_ARG("--disabled", CLI_SWITCH, disabled, 0, 0),
    WH_ARG("--enable", CLI_SWITCH, enable, 0, 0),
    WH_ARG("--disable", CLI_SWITCH, disable, 0, 0),
    WH_ARG("--allow-http", CLI_SWITCH, allow_http, 0, 0),
    WH_ARG("--failed", CLI_SWITCH, failed, 0, 0),
    WH_ARG("--name", CLI_TEXT, name, 0, 0),
    WH_ARG("--url", CLI_TEXT, url, 0, 0),
    WH_ARG("--events", CLI_TEXT, events, 0, 0),
    WH_ARG("--description", CLI_TEXT, description, 0, 0),
    WH_ARG("--limit", CLI_NUMBER, limit, 1, 10000),
};

static const char *const webhooks_subs[] = {"list", "create", "update", "logs", NULL};

static const struct cli_cmd webhooks_cmd = {
    .name          = "duro-bridge webhooks",
    .usage         = webhooks_usage,
    .log_level_off = offsetof(struct webhooks_config, log_level),
    CLI_TABLES(webhooks_subs, webhooks_settings, webhooks_opts),
};

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

/* http(s) URL check: https required unless allowed. */
static int webhooks_check_url(const char *url, int allow_http)
{
        if (!strncmp(url, "https://", 8) && url[8])
                return 0;
        if (!strncmp(url, "http://", 7) && url[7]) {
                if (allow_http)
                        return 0;
                return cli_fail(CLI_FAIL,
                                "--url %s: not HTTPS (Duro would send webhooks in "
                                "clear text); add --allow-http to insist",
                                url);
        }
        return cli_fail(CLI_FAIL, "--url %s: not an http(s) URL", url);
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
                cli_print_json(hooks);
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

/* Runs a request and returns data.webhooks.<field> (borrowed from *data, which the
 * caller owns), or NULL (and *data NULL) after printing why the request failed. */
static json_t *webhooks_ask(struct cli *cli, const char *query, const char *opname,
                            json_t *vars, const char *field, json_t **data)
{
        *data = cli_api_call(cli, query, opname, vars);
        return json_object_get(json_object_get(*data, "webhooks"), field);
}

/* Frees the answer data; returns 0 when ok, else the exit status (after saying why
 * when the request succeeded but the answer is not what was asked). */
static int webhooks_done(json_t *data, int ok)
{
        json_decref(data);
        if (!data)
                return CLI_FAIL;
        return ok ? 0 : cli_fail(CLI_FAIL, "unexpected answer");
}

static int webhooks_list(struct cli *cli, const struct webhooks_args *a)
{
        json_t *data,
            *hooks = webhooks_ask(cli, q_list, "DuroWebhooks", NULL, "get", &data);
        int ok     = json_is_array(hooks);

        if (ok)
                webhooks_print_hooks(hooks, a->json);
        return webhooks_done(data, ok);
}

/* Prints a created webhook and, when Duro returned it, its signing secret. */
static void webhooks_print_created(json_t *hook, int json)
{
        const char *secret = json_string_value(json_object_get(hook, "secret"));
        json_t *one;

        if (json) {
                cli_print_json(hook);
                return;
        }
        one = json_array();
        json_array_append(one, hook);
        webhooks_print_hooks(one, 0);
        json_decref(one);
        if (secret) {
                printf("\nsigning secret: %s\n", secret);
                printf("Store it now (it is not shown again) in the bridge's "
                       "secrets file, one secret per line, e.g. a Kubernetes "
                       "Secret mounted as DURO_WEBHOOK_SECRETS_FILE; the bridge "
                       "re-reads that file when it changes.\n");
        }
}

static int webhooks_create(struct cli *cli, const struct webhooks_args *a)
{
        json_t *input, *vars, *data, *hook;
        int ok;

        if (!a->name || !a->url || !a->events)
                return cli_fail(CLI_USAGE, "create needs --name, --url and --events");
        if (webhooks_check_url(a->url, a->allow_http))
                return CLI_FAIL;
        input = json_pack("{s:s, s:s, s:o, s:b, s:s?}", "name", a->name, "url", a->url,
                          "events", webhooks_events(a->events), "isEnabled",
                          !a->disabled, "description", a->description);
        vars  = json_pack("{s:o}", "input", input);
        hook  = webhooks_ask(cli, q_create, "DuroCreateWebhook", vars, "create", &data);
        json_decref(vars);
        ok = json_is_object(hook);
        if (ok)
                webhooks_print_created(hook, a->json);
        return webhooks_done(data, ok);
}

static int webhooks_update(struct cli *cli, const struct webhooks_args *a)
{
        json_t *input, *vars, *data, *hooks;

        if (!a->id)
                return cli_fail(CLI_USAGE, "update needs the webhook ID");
        if (a->url && webhooks_check_url(a->url, a->allow_http))
                return CLI_FAIL;
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
                return cli_fail(CLI_USAGE, "update: nothing to change (give --events, "
                                           "--enable, --disable, --url or --name)");
        }
        vars  = json_pack("{s:[s], s:o}", "ids", a->id, "input", input);
        hooks = webhooks_ask(cli, q_update, "DuroUpdateWebhook", vars, "update", &data);
        json_decref(vars);
        if (!data)
                return CLI_FAIL;
        if (!json_is_array(hooks) || json_array_size(hooks) == 0) {
                json_decref(data);
                return cli_fail(CLI_FAIL, "no webhook with id %s", a->id);
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

/* An unknown id is an error, not an empty list: 0 when Duro has webhook id. */
static int webhooks_known(struct cli *cli, const char *id)
{
        json_t *data, *h;
        json_t *hooks = webhooks_ask(cli, q_list, "DuroWebhooks", NULL, "get", &data);
        size_t i;
        int found = 0;

        if (!data)
                return CLI_FAIL;
        json_array_foreach(hooks, i, h) found |= !strcmp(webhooks_str(h, "id"), id);
        json_decref(data);
        return found ? 0 : cli_fail(CLI_FAIL, "no webhook with id %s", id);
}

/* Appends to out the deliveries of a->id, newest first, following the pages until
 * a->limit of them (only the failed ones with --failed). Returns 0 or the status. */
static int webhooks_fetch_logs(struct cli *cli, const struct webhooks_args *a,
                               json_t *out)
{
        char *after = NULL;
        int rc = 0, pages = 0;

        while ((long)json_array_size(out) < a->limit && pages++ < 1000) {
                json_t *vars = json_pack("{s:s, s:i, s:s?}", "id", a->id, "first", 50,
                                         "after", after);
                json_t *data, *edges, *edge, *pi;
                json_t *conn =
                    json_object_get(webhooks_ask(cli, q_logs, "DuroWebhookLogs", vars,
                                                 "getLogs", &data),
                                    "connection");
                size_t i;
                json_decref(vars);
                if (!data) {
                        rc = CLI_FAIL;
                        break;
                }
                edges = json_object_get(conn, "edges");
                if (!json_is_array(edges)) {
                        json_decref(data);
                        rc = cli_fail(CLI_FAIL,
                                      "no webhook with id %s (or an unexpected answer)",
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
        return rc;
}

static void webhooks_print_logs(json_t *logs, int json)
{
        size_t i;
        json_t *l;

        if (json) {
                cli_print_json(logs);
                return;
        }
        printf("%-24s  %-28s  %-4s  %-5s  %s\n", "CREATED", "EVENT", "CODE", "ACKED",
               "ID");
        json_array_foreach(logs, i, l)
        {
                json_t *code  = json_object_get(l, "responseCode");
                char cbuf[16] = "-";
                if (json_is_integer(code))
                        snprintf(cbuf, sizeof(cbuf), "%lld",
                                 (long long)json_integer_value(code));
                printf("%-24s  %-28s  %-4s  %-5s  %s\n", webhooks_str(l, "createdAt"),
                       webhooks_str(l, "event"), cbuf,
                       json_is_true(json_object_get(l, "isAcknowledged")) ? "yes"
                                                                          : "no",
                       webhooks_str(l, "id"));
        }
}

static int webhooks_logs(struct cli *cli, const struct webhooks_args *a)
{
        json_t *out;
        int rc;

        if (!a->id)
                return cli_fail(CLI_USAGE, "logs needs the webhook ID");
        rc = webhooks_known(cli, a->id);
        if (rc)
                return rc;
        out = json_array();
        if (!out)
                return cli_fail(CLI_FAIL, "out of memory");
        rc = webhooks_fetch_logs(cli, a, out);
        if (!rc)
                webhooks_print_logs(out, a->json);
        json_decref(out);
        return rc;
}

/* By subcommand, in the order of webhooks_subs. */
static int (*const webhooks_run[])(struct cli *, const struct webhooks_args *) = {
    webhooks_list, webhooks_create, webhooks_update, webhooks_logs};

int cli_webhooks_main(int argc, char **argv)
{
        struct webhooks_config cfg = {0};
        struct webhooks_args a     = {.limit = 20};
        struct cli cli;
        int rc = cli_start(&cli, &webhooks_cmd, argc, argv, &cfg, &a);

        if (rc < 0 && a.enable && a.disable)
                rc = cli_fail(CLI_USAGE, "--enable and --disable cannot go together");
        if (rc < 0 && !(rc = cli_api_client(&cli, &cfg.api)))
                rc = webhooks_run[cli.sub](&cli, &a);
        cli_end(&cli);
        return rc;
}
