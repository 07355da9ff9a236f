/* Unit test for `duro-enricher dlq`'s end offsets (cli_dlq_ends), against librdkafka's
 * mock cluster: a partition whose end cannot be read fails the command, saying so,
 * instead of being skipped as empty. (The commands themselves are tested against a
 * real broker: tests/integration/test_cli_dlq.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli.h"
#include "tutil.h"

#define LIST_OFFSETS 2 /* the Kafka protocol's API key of ListOffsets */

struct mock {
        rd_kafka_t *owner, *c;
        rd_kafka_mock_cluster_t *mc;
};

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        (void)rk;
        (void)level;
        (void)fac;
        (void)buf;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;

        rd_kafka_conf_set_log_cb(conf, quiet_log);
        if (bootstrap)
                assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap,
                                                   err, sizeof(err)),
                                 RD_KAFKA_CONF_OK);
        else
                assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1",
                                                   err, sizeof(err)),
                                 RD_KAFKA_CONF_OK);
        if (type == RD_KAFKA_CONSUMER)
                assert_int_equal(
                    rd_kafka_conf_set(conf, "group.id", "dlq-test", err, sizeof(err)),
                    RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(type, conf, err, sizeof(err));
        assert_non_null(rk);
        return rk;
}

static void mock_up(struct mock *m)
{
        m->owner = client(RD_KAFKA_PRODUCER, NULL);
        m->mc    = rd_kafka_handle_mock_cluster(m->owner);
        assert_non_null(m->mc);
        assert_int_equal(rd_kafka_mock_topic_create(m->mc, "dlq", 2, 1),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        m->c = client(RD_KAFKA_CONSUMER, rd_kafka_mock_cluster_bootstraps(m->mc));
}

static void mock_down(struct mock *m)
{
        rd_kafka_destroy(m->c);
        rd_kafka_destroy(m->owner);
}

static rd_kafka_topic_partition_list_t *both_partitions(void)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);

        rd_kafka_topic_partition_list_add(l, "dlq", 0);
        rd_kafka_topic_partition_list_add(l, "dlq", 1);
        return l;
}

static void test_ends_read(void **state)
{
        rd_kafka_topic_partition_list_t *l = both_partitions();
        int64_t end[3]                     = {-7, -7, -7};
        struct mock m;

        (void)state;
        mock_up(&m);
        assert_int_equal(cli_dlq_ends(m.c, l, end, 2), 0);
        assert_int_equal(end[0], 0); /* empty partitions end at 0 */
        assert_int_equal(end[1], 0);
        rd_kafka_topic_partition_list_destroy(l);
        mock_down(&m);
}

static void test_unreadable_end_fails_naming_the_partition(void **state)
{
        rd_kafka_topic_partition_list_t *l = both_partitions();
        int64_t end[3]                     = {-7, -7, -7};
        struct tutil_capture cap;
        char text[2048];
        struct mock m;
        int rc;

        (void)state;
        mock_up(&m);
        /* The ends come from one ListOffsets request (its retry, if any, fails
         * too). */
        rd_kafka_mock_push_request_errors(m.mc, LIST_OFFSETS, 2,
                                          RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                          RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        tutil_capture_begin(&cap, 2);
        rc = cli_dlq_ends(m.c, l, end, 2);
        tutil_capture_end(&cap, text, sizeof(text));
        assert_int_equal(rc, -1);
        if (!strstr(text, "cannot read the end of dlq"))
                fail_msg("stderr: %s", text);
        rd_kafka_topic_partition_list_destroy(l);
        mock_down(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ends_read),
            cmocka_unit_test(test_unreadable_end_fails_naming_the_partition),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
