/* cli_webhooks.c - `duro-bridge webhooks list|create|update|logs`: registering and
 * inspecting the Duro webhook from the command line, through Duro's GraphQL API
 * (the queries and mutations of Duro's webhook documentation). Tables for people,
 * --json for scripts; exit 0 on success, 1 with a one-line reason on any error, 2 on
 * bad usage. The API key comes from DURO_API_KEY or DURO_API_KEY_FILE, never argv;
 * the other settings also from their flags (--api-url URL, ...: see --help).
 *
 * The GraphQL documents are files (webhooks_*.graphql in DURO_QUERIES_DIR, by default
 * the installed schemas/graphql/), read and checked (dgqldoc) at start-up. create and
 * update take their input inline, as Duro's documentation writes them, with no input
 * type named: the placeholders $input and $ids in those documents are replaced by
 * GraphQL literals (dgqllit: strings escaped, events checked as GraphQL names) and are
 * never declared as variables. logs sends real variables of built-in types. */
#include "cli.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbuf.h"
#include "dfile.h"
#include "dgqldoc.h"
#include "dgqllit.h"
#include "dlog.h"
#include "dschema.h"

static const char webhooks_usage[] =
    "duro-bridge webhooks list [--json]\n"
    "       duro-bridge webhooks create --name NAME --url URL --events E1,E2 "
    "[--description TEXT] [--disabled] [--allow-http] [--json]\n"
    "       duro-bridge webhooks update ID [--events E1,E2] [--enable|--disable] "
    "[--url URL] [--name NAME] [--description TEXT] [--allow-http] [--json]\n"
    "       duro-bridge webhooks logs ID [--limit N] [--failed] [--json]\n"
    "settings: DURO_API_URL, DURO_API_KEY or DURO_API_KEY_FILE, "
    "DURO_API_ORGANIZATION, DURO_API_LIBRARY, DURO_QUERIES_DIR, or their flags "
    "(--help lists them; the key never on the command line)";

struct webhooks_config {
        struct cli_api api;
        char *queries_dir;
        int log_level;
};

static const struct dconf_opt webhooks_settings[] = {
    CLI_API_OPTS(struct webhooks_config, api),
    {"DURO_QUERIES_DIR", "queries-dir", DCONF_STRING, NULL, 0, 0,
     offsetof(struct webhooks_config, queries_dir), 0,
     "folder of the GraphQL documents (default: the installed schemas/graphql)"},
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

/* The documents, read from DURO_QUERIES_DIR and checked at start-up. */
enum webhooks_doc_id { WH_LIST, WH_CREATE, WH_UPDATE, WH_LOGS, WH_NDOCS };

static const struct {
        const char *file;
        int mutation;
        const char *holes[2]; /* its placeholders, in the order they are filled */
} webhooks_files[WH_NDOCS] = {
    [WH_LIST]   = {"webhooks_list.graphql", 0, {NULL, NULL}},
    [WH_CREATE] = {"webhooks_create.graphql", 1, {"input", NULL}},
    [WH_UPDATE] = {"webhooks_update.graphql", 1, {"ids", "input"}},
    [WH_LOGS]   = {"webhooks_logs.graphql", 0, {NULL, NULL}},
};

struct webhooks_doc {
        char path[4096];
        char *text; /* the file, NUL-terminated (owned) */
        size_t len;
        char *opname;                  /* the operation's name (owned) */
        size_t hole[2];                /* offset of each placeholder's '$' */
        size_t secret_off, secret_len; /* create's plain field secret; len 0: none */
};

/* One run of the command. */
struct webhooks {
        struct cli cli;
        struct webhooks_config cfg;
        struct webhooks_args a;
        struct webhooks_doc doc[WH_NDOCS];
};

static int webhooks_load_doc(struct webhooks_doc *d, const char *dir,
                             enum webhooks_doc_id id)
{
        struct dgqldoc_op op;
        char err[4400];

        snprintf(d->path, sizeof(d->path), "%s/%s", dir, webhooks_files[id].file);
        d->text = dfile_read(d->path, 1024 * 1024, &d->len, NULL, err, sizeof(err));
        if (!d->text)
                return cli_fail(CLI_FAIL, "DURO_QUERIES_DIR=%s: %s", dir, err);
        if (dgqldoc_parse(d->text, d->len, d->path, &op, err, sizeof(err)))
                return cli_fail(CLI_FAIL, "%s", err);
        if (op.mutation != webhooks_files[id].mutation)
                return cli_fail(CLI_FAIL, "%s:%d: a %s, where a %s is wanted", d->path,
                                op.line, op.mutation ? "mutation" : "query",
                                webhooks_files[id].mutation ? "mutation" : "query");
        d->opname = strndup(op.name, op.name_len);
        if (!d->opname)
                return cli_fail(CLI_FAIL, "out of memory");
        for (int k = 0; k < 2 && webhooks_files[id].holes[k]; k++)
                if (dgqldoc_placeholder(d->text, d->len, d->path,
                                        webhooks_files[id].holes[k], &d->hole[k], err,
                                        sizeof(err)))
                        return cli_fail(CLI_FAIL, "%s", err);
        if (id == WH_CREATE &&
            dgqldoc_leaf_field(d->text, d->len, d->path, "secret", &d->secret_off,
                               &d->secret_len, err, sizeof(err)) < 0)
                return cli_fail(CLI_FAIL, "%s", err);
        return 0;
}

/* Reads and checks every document (a broken installation shows in any subcommand). */
static int webhooks_load(struct webhooks *w)
{
        const char *dir =
            w->cfg.queries_dir ? w->cfg.queries_dir : dschema_queries_dir();
        int rc;

        if (!dir)
                return cli_fail(CLI_FAIL, "DURO_QUERIES_DIR: not set, and no "
                                          "schemas/graphql folder is installed");
        for (int i = 0; i < WH_NDOCS; i++)
                if ((rc = webhooks_load_doc(&w->doc[i], dir, (enum webhooks_doc_id)i)))
                        return rc;
        return 0;
}

static void webhooks_free(struct webhooks *w)
{
        for (int i = 0; i < WH_NDOCS; i++) {
                free(w->doc[i].text);
                free(w->doc[i].opname);
        }
}

/* Document id with its placeholders replaced by lits (in webhooks_files' order) and,
 * when without_secret, the field secret cut out. Returns a malloc'd string, or NULL
 * after saying why. */
static char *webhooks_fill(const struct webhooks *w, enum webhooks_doc_id id,
                           const char *const *lits, int without_secret)
{
        const struct webhooks_doc *d = &w->doc[id];
        struct {
                size_t off, len;
                const char *with;
        } cut[3], t;
        size_t n = 0, at = 0;
        struct dbuf b;
        int bad = 0;

        for (int k = 0; k < 2 && webhooks_files[id].holes[k]; k++) {
                cut[n].off    = d->hole[k];
                cut[n].len    = 1 + strlen(webhooks_files[id].holes[k]);
                cut[n++].with = lits[k];
        }
        if (without_secret && d->secret_len) {
                cut[n].off    = d->secret_off;
                cut[n].len    = d->secret_len;
                cut[n++].with = "";
        }
        for (size_t i = 1; i < n; i++) /* in the order of the text */
                for (size_t k = i; k > 0 && cut[k - 1].off > cut[k].off; k--) {
                        t          = cut[k];
                        cut[k]     = cut[k - 1];
                        cut[k - 1] = t;
                }
        dbuf_init(&b, 0);
        for (size_t i = 0; i < n; i++) {
                bad |= dbuf_append(&b, d->text + at, cut[i].off - at) ||
                       dbuf_append(&b, cut[i].with, strlen(cut[i].with));
                at = cut[i].off + cut[i].len;
        }
        bad |= dbuf_append(&b, d->text + at, d->len - at);
        if (bad) {
                dbuf_free(&b);
                cli_fail(CLI_FAIL, "out of memory");
                return NULL;
        }
        return dbuf_take(&b, NULL);
}

/* s (len bytes) quoted for a one-line message: printable ASCII as itself (" and \
 * escaped), any other byte as \xHH; at most about 60 bytes of s. */
static const char *webhooks_quote(const char *s, size_t len, char *out, size_t size)
{
        size_t o = 0;

        out[o++] = '"';
        for (size_t i = 0; i < len && o + 8 < size; i++) {
                unsigned char c = (unsigned char)s[i];
                if (i == 60) {
                        o += (size_t)snprintf(out + o, size - o, "...");
                        break;
                }
                if (c == '"' || c == '\\')
                        o += (size_t)snprintf(out + o, size - o, "\\%c", c);
                else if (c >= 0x20 && c < 0x7f)
                        out[o++] = (char)c;
                else
                        o += (size_t)snprintf(out + o, size - o, "\\x%02X", c);
        }
        out[o++] = '"';
        out[o]   = '\0';
        return out;
}

/* Writes --events (E1,E2, any case) as a list of enum values. Returns 0, or the exit
 * status after saying which event is not a GraphQL name. */
static int webhooks_put_events(struct dgqllit *w, const char *list)
{
        char err[256], q[512];
        const char *p = list;
        int n         = 0;

        dgqllit_list(w);
        while (*p) {
                size_t len = strcspn(p, ",");
                if (len) {
                        char *ev = strndup(p, len);
                        if (!ev)
                                return cli_fail(CLI_FAIL, "out of memory");
                        for (char *c = ev; *c; c++)
                                if (*c >= 'a' && *c <= 'z')
                                        *c = (char)(*c - 'a' + 'A');
                        if (dgqllit_check_enum(ev, len, err, sizeof(err))) {
                                free(ev);
                                return cli_fail(CLI_FAIL, "--events: %s is %s",
                                                webhooks_quote(p, len, q, sizeof(q)),
                                                err);
                        }
                        dgqllit_enum(w, ev, len);
                        free(ev);
                        n++;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        dgqllit_close(w);
        if (!n)
                return cli_fail(CLI_FAIL, "--events: no event given");
        return 0;
}

/* Writes key: "v", v being the value of option opt. Returns 0 or the exit status. */
static int webhooks_put_string(struct dgqllit *w, const char *key, const char *opt,
                               const char *v)
{
        char err[256];

        if (dgqllit_check_utf8(v, strlen(v), err, sizeof(err)))
                return cli_fail(CLI_FAIL, "%s: %s", opt, err);
        if (key)
                dgqllit_key(w, key);
        dgqllit_string(w, v, strlen(v));
        return 0;
}

/* Ends the literal of w. Returns 0 or the exit status. */
static int webhooks_lit_end(struct dgqllit *w)
{
        char err[256];

        if (dgqllit_end(w, err, sizeof(err)))
                return cli_fail(CLI_FAIL, "cannot write the input: %s", err);
        return 0;
}

/* The input object of create or update: each field given. */
static int webhooks_input(const struct webhooks_args *a, int create, struct dbuf *out)
{
        struct dgqllit w;
        int rc = 0;

        dgqllit_init(&w, out);
        dgqllit_object(&w);
        if (a->name)
                rc = webhooks_put_string(&w, "name", "--name", a->name);
        if (!rc && a->description)
                rc = webhooks_put_string(&w, "description", "--description",
                                         a->description);
        if (!rc && a->url)
                rc = webhooks_put_string(&w, "url", "--url", a->url);
        if (!rc && a->events) {
                dgqllit_key(&w, "events");
                rc = webhooks_put_events(&w, a->events);
        }
        if (!rc && (create || a->enable || a->disable)) {
                dgqllit_key(&w, "isEnabled");
                dgqllit_bool(&w, create ? !a->disabled : a->enable);
        }
        dgqllit_close(&w);
        return rc ? rc : webhooks_lit_end(&w);
}

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

/* Runs document id (its text as it is) and returns data.webhooks.<field> (borrowed
 * from *data, which the caller owns), or NULL (and *data NULL) after printing why the
 * request failed. */
static json_t *webhooks_ask(struct webhooks *w, enum webhooks_doc_id id, json_t *vars,
                            const char *field, json_t **data)
{
        *data = cli_api_call(&w->cli, w->doc[id].text, w->doc[id].opname, vars);
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

static int webhooks_list(struct webhooks *w)
{
        json_t *data, *hooks = webhooks_ask(w, WH_LIST, NULL, "get", &data);
        int ok = json_is_array(hooks);

        if (ok)
                webhooks_print_hooks(hooks, w->a.json);
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

/* 1 when the failed answer res is the API refusing the field secret, which Duro's
 * documentation does not show: a GraphQL validation error "Cannot query field" about
 * it (with HTTP 200, or 400 as servers such as Apollo answer; dgql keeps the errors of
 * both). A validation error means nothing ran, so sending the document again without
 * the field is safe. */
static int webhooks_no_secret_field(const struct dgql_result *res)
{
        size_t i;
        json_t *e;

        /* A validation error comes without data: with data, something ran. */
        if (res->outcome != DGQL_FAILED || res->data)
                return 0;
        json_array_foreach(res->errors, i, e)
        {
                const char *m = json_string_value(json_object_get(e, "message"));
                if (m && (strstr(m, "Cannot query field 'secret'") ||
                          strstr(m, "Cannot query field \"secret\"")))
                        return 1;
        }
        return 0;
}

/* Sends create with the input literal lit: with the field secret, then without it
 * when the API does not know it (*without set). Returns 0 with *res the answer (the
 * caller clears it), or the exit status. */
static int webhooks_send_create(struct webhooks *w, const char *lit,
                                struct dgql_result *res, int *without)
{
        const struct webhooks_doc *d = &w->doc[WH_CREATE];
        const char *lits[2]          = {lit, NULL};

        for (*without = 0;; *without = 1) {
                char *doc = webhooks_fill(w, WH_CREATE, lits, *without);
                int rc;
                if (!doc)
                        return CLI_FAIL;
                rc = cli_api_request(&w->cli, doc, d->opname, NULL, res);
                free(doc);
                if (rc || res->outcome == DGQL_OK || *without || !d->secret_len ||
                    !webhooks_no_secret_field(res))
                        return rc;
                dlog_info("create: the API refused the field secret (%s); sending it "
                          "again without",
                          res->error);
                dgql_result_clear(res);
        }
}

static int webhooks_create(struct webhooks *w)
{
        const struct webhooks_args *a = &w->a;
        struct dgql_result res;
        struct dbuf in;
        json_t *hook;
        int rc, without;

        if (!a->name || !a->url || !a->events)
                return cli_fail(CLI_USAGE, "create needs --name, --url and --events");
        if (webhooks_check_url(a->url, a->allow_http))
                return CLI_FAIL;
        dbuf_init(&in, 0);
        rc = webhooks_input(a, 1, &in);
        if (!rc)
                rc = webhooks_send_create(w, dbuf_cstr(&in), &res, &without);
        dbuf_free(&in);
        if (rc)
                return rc;
        if (res.outcome != DGQL_OK) {
                rc = cli_api_report(&res);
                dgql_result_clear(&res);
                return rc;
        }
        hook = json_object_get(json_object_get(res.data, "webhooks"), "create");
        if (!json_is_object(hook)) {
                rc = cli_fail(CLI_FAIL, "unexpected answer");
        } else {
                webhooks_print_created(hook, a->json);
                fflush(stdout);
                if (!json_string_value(json_object_get(hook, "secret")))
                        cli_fail(0,
                                 "note: the Duro API returned no signing secret%s; get "
                                 "the webhook's secret from Duro and put it in the "
                                 "bridge's secrets file (DURO_WEBHOOK_SECRETS_FILE)",
                                 without ? " (it has no field secret)" : "");
        }
        dgql_result_clear(&res);
        return rc;
}

static int webhooks_update(struct webhooks *w)
{
        const struct webhooks_args *a = &w->a;
        struct dbuf ids, in;
        struct dgqllit lw;
        const char *lits[2];
        char *doc = NULL;
        json_t *data, *hooks;
        int rc;

        if (!a->id)
                return cli_fail(CLI_USAGE, "update needs the webhook ID");
        if (a->url && webhooks_check_url(a->url, a->allow_http))
                return CLI_FAIL;
        if (!a->events && !a->enable && !a->disable && !a->url && !a->name &&
            !a->description)
                return cli_fail(CLI_USAGE, "update: nothing to change (give --events, "
                                           "--enable, --disable, --url, --name or "
                                           "--description)");
        dbuf_init(&ids, 0);
        dbuf_init(&in, 0);
        dgqllit_init(&lw, &ids);
        dgqllit_list(&lw);
        rc = webhooks_put_string(&lw, NULL, "ID", a->id);
        dgqllit_close(&lw);
        if (!rc)
                rc = webhooks_lit_end(&lw);
        if (!rc)
                rc = webhooks_input(a, 0, &in);
        if (!rc) {
                lits[0] = dbuf_cstr(&ids);
                lits[1] = dbuf_cstr(&in);
                doc     = webhooks_fill(w, WH_UPDATE, lits, 0);
                rc      = doc ? 0 : CLI_FAIL;
        }
        dbuf_free(&ids);
        dbuf_free(&in);
        if (rc)
                return rc;
        data  = cli_api_call(&w->cli, doc, w->doc[WH_UPDATE].opname, NULL);
        hooks = json_object_get(json_object_get(data, "webhooks"), "update");
        free(doc);
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
static int webhooks_known(struct webhooks *w, const char *id)
{
        json_t *data, *h;
        json_t *hooks = webhooks_ask(w, WH_LIST, NULL, "get", &data);
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
static int webhooks_fetch_logs(struct webhooks *w, json_t *out)
{
        const struct webhooks_args *a = &w->a;
        char *after                   = NULL;
        int rc = 0, pages = 0;

        while ((long)json_array_size(out) < a->limit && pages++ < 1000) {
                json_t *vars = json_pack("{s:s, s:i, s:s?}", "id", a->id, "first", 50,
                                         "after", after);
                json_t *data, *edges, *edge, *pi;
                json_t *conn = json_object_get(
                    webhooks_ask(w, WH_LOGS, vars, "getLogs", &data), "connection");
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

static int webhooks_logs(struct webhooks *w)
{
        json_t *out;
        int rc;

        if (!w->a.id)
                return cli_fail(CLI_USAGE, "logs needs the webhook ID");
        rc = webhooks_known(w, w->a.id);
        if (rc)
                return rc;
        out = json_array();
        if (!out)
                return cli_fail(CLI_FAIL, "out of memory");
        rc = webhooks_fetch_logs(w, out);
        if (!rc)
                webhooks_print_logs(out, w->a.json);
        json_decref(out);
        return rc;
}

/* By subcommand, in the order of webhooks_subs. */
static int (*const webhooks_run[])(struct webhooks *) = {
    webhooks_list, webhooks_create, webhooks_update, webhooks_logs};

int cli_webhooks_main(int argc, char **argv)
{
        struct webhooks w;
        int rc;

        memset(&w, 0, sizeof(w));
        w.a.limit = 20;
        rc        = cli_start(&w.cli, &webhooks_cmd, argc, argv, &w.cfg, &w.a);
        if (rc < 0 && w.a.enable && w.a.disable)
                rc = cli_fail(CLI_USAGE, "--enable and --disable cannot go together");
        if (rc < 0 && !(rc = webhooks_load(&w)) &&
            !(rc = cli_api_client(&w.cli, &w.cfg.api)))
                rc = webhooks_run[w.cli.sub](&w);
        webhooks_free(&w);
        cli_end(&w.cli);
        return rc;
}
