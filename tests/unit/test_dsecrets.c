/* Unit tests for dsecrets: parsing, env/file holders, reload, refcounting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsecrets.h"
#include "dsig.h"
#include "tutil.h"

struct fx {
        char dir[64];
        char path[128];
        int seq;
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        strcpy(f->dir, "/tmp/test_dsecrets_XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->path, sizeof(f->path), "%s/secrets", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char cmd[160];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static void write_file(const char *path, const char *content)
{
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        assert_int_equal(fwrite(content, 1, strlen(content), fp), strlen(content));
        assert_int_equal(fclose(fp), 0);
}

/* Writes content to a new file and renames it over path (a new inode, as when
 * Kubernetes swaps the symlink of a mounted secret). */
static void replace_file(struct fx *f, const char *content)
{
        char tmp[160];

        snprintf(tmp, sizeof(tmp), "%s/.tmp%d", f->dir, f->seq++);
        write_file(tmp, content);
        assert_int_equal(rename(tmp, f->path), 0);
}

static int has_secret(const struct dsecrets_set *set, const char *s)
{
        for (size_t i = 0; i < set->n; i++)
                if (set->secret[i].len == strlen(s) &&
                    !memcmp(set->secret[i].key, s, set->secret[i].len))
                        return 1;
        return 0;
}

static void expect_set(struct dsecrets *s, const char *a, const char *b)
{
        struct dsecrets_set *set = dsecrets_acquire(s);

        assert_non_null(set);
        assert_int_equal(set->n, b ? 2 : 1);
        assert_true(has_secret(set, a));
        if (b)
                assert_true(has_secret(set, b));
        dsecrets_release(set);
}

/* Expects set to hold exactly these keys, in this order (a NULL-terminated list). */
static void expect_keys(const struct dsecrets_set *set, const char *const *keys)
{
        size_t n = 0;

        for (; keys[n]; n++) {
                size_t len = strlen(keys[n]);
                assert_true(n < set->n);
                assert_int_equal(set->secret[n].len, len);
                assert_memory_equal(set->secret[n].key, keys[n], len);
        }
        assert_int_equal(set->n, n);
}

/* ---- dsecrets_parse ---- */

/* dsecrets_parse of a NUL-terminated text, which must give a set. */
static struct dsecrets_set *parse_text(const char *text)
{
        struct dsecrets_set *set = dsecrets_parse(text, strlen(text));

        assert_non_null(set);
        return set;
}

static void test_parse_lines(void **state)
{
        struct dsecrets_set *set = parse_text("alpha\n\nbeta\n");

        (void)state;
        assert_int_equal(atomic_load(&set->refcnt), 1);
        expect_keys(set, TU_LIST("alpha", "beta"));
        dsecrets_release(set);
}

static void test_parse_crlf_and_trim(void **state)
{
        /* inner white space is part of the secret; the last line has no newline */
        struct dsecrets_set *set =
            parse_text("  alpha  \r\n\r\n\t beta\t\r\n   \r\n gam ma \r\nlast");

        (void)state;
        expect_keys(set, TU_LIST("alpha", "beta", "gam ma", "last"));
        dsecrets_release(set);
}

static void test_parse_empty(void **state)
{
        (void)state;
        assert_null(dsecrets_parse("", 0));
        assert_null(dsecrets_parse("\n", 1));
        assert_null(dsecrets_parse("\n\n\r\n  \t\n", 8));
        assert_null(dsecrets_parse("   ", 3));
}

static void test_parse_respects_len(void **state)
{
        char *buf = malloc(6);
        struct dsecrets_set *set;

        (void)state;
        assert_non_null(buf);
        memcpy(buf, "abc\ndx", 6); /* not NUL-terminated */
        set = dsecrets_parse(buf, 5);
        assert_non_null(set);
        assert_int_equal(set->n, 2);
        assert_int_equal(set->secret[1].len, 1);
        assert_memory_equal(set->secret[1].key, "d", 1);
        dsecrets_release(set);
        free(buf);
}

/* ---- holders ---- */

static void test_env_holder(void **state)
{
        char err[256] = "";
        struct dsecrets *s;

        (void)state;
        s = dsecrets_new("  s3cret \n", "/nonexistent/path", err, sizeof(err));
        assert_non_null(s);
        assert_int_equal(dsecrets_count(s), 1);
        expect_set(s, "s3cret", NULL);
        /* not file-backed: reload does nothing */
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 0);
        assert_int_equal(dsecrets_reload(s, 1, err, sizeof(err)), 0);
        expect_set(s, "s3cret", NULL);
        dsecrets_destroy(s);
        dsecrets_destroy(NULL);
}

static void test_env_blank_and_nothing(void **state)
{
        char err[256] = "";

        (void)state;
        assert_null(dsecrets_new(" \t ", NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "blank"));
        err[0] = '\0';
        assert_null(dsecrets_new(NULL, NULL, err, sizeof(err)));
        assert_true(err[0] != '\0');
        err[0] = '\0';
        assert_null(dsecrets_new("", "", err, sizeof(err)));
        assert_true(err[0] != '\0');
}

static void test_file_missing_or_empty_at_start(void **state)
{
        struct fx *f  = *state;
        char err[256] = "";

        assert_null(dsecrets_new(NULL, f->path, err, sizeof(err)));
        assert_non_null(strstr(err, f->path));
        write_file(f->path, "\n  \n");
        err[0] = '\0';
        assert_null(dsecrets_new("", f->path, err, sizeof(err)));
        assert_non_null(strstr(err, f->path));
}

static void test_file_reload(void **state)
{
        struct fx *f  = *state;
        char err[256] = "";
        struct dsecrets *s;

        write_file(f->path, "one\ntwo\n");
        s = dsecrets_new(NULL, f->path, err, sizeof(err));
        if (!s)
                fail_msg("dsecrets_new: %s", err);
        expect_set(s, "one", "two");

        /* unchanged: nothing to do (twice) */
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 0);
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 0);
        /* forced: re-read */
        assert_int_equal(dsecrets_reload(s, 1, err, sizeof(err)), 1);
        expect_set(s, "one", "two");

        /* a new file renamed over the path */
        replace_file(f, "three\n");
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        expect_set(s, "three", NULL);
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 0);

        /* rewritten in place with a different size */
        write_file(f->path, "four\nfive-five\n");
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        expect_set(s, "four", "five-five");

        /* becomes empty: error, the old set stays */
        replace_file(f, "\n\n");
        err[0] = '\0';
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), -1);
        assert_non_null(strstr(err, f->path));
        assert_null(strstr(err, "four"));
        expect_set(s, "four", "five-five");
        assert_int_equal(dsecrets_count(s), 2);
        /* forcing does not help an empty file */
        assert_int_equal(dsecrets_reload(s, 1, err, sizeof(err)), -1);
        expect_set(s, "four", "five-five");

        /* removed: error, the old set stays */
        assert_int_equal(unlink(f->path), 0);
        err[0] = '\0';
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), -1);
        assert_non_null(strstr(err, f->path));
        expect_set(s, "four", "five-five");
        assert_int_equal(dsecrets_reload(s, 1, err, sizeof(err)), -1);
        expect_set(s, "four", "five-five");

        /* back again */
        replace_file(f, "six\n");
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        expect_set(s, "six", NULL);
        dsecrets_destroy(s);
}

/* Sets the modification time of path to that of ref. */
static void copy_mtime(const char *ref, const char *path)
{
        struct stat st;
        struct timespec ts[2];

        assert_int_equal(stat(ref, &st), 0);
        ts[0] = st.st_atim;
        ts[1] = st.st_mtim;
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_reload_sees_inode_and_size(void **state)
{
        struct fx *f  = *state;
        char err[256] = "", tmp[160];
        struct dsecrets *s;
        struct stat a, b;

        write_file(f->path, "aaaa\n");
        s = dsecrets_new(NULL, f->path, err, sizeof(err));
        assert_non_null(s);

        /* a new inode with the same size and the same mtime: still a change */
        snprintf(tmp, sizeof(tmp), "%s/.same", f->dir);
        write_file(tmp, "bbbb\n");
        copy_mtime(f->path, tmp);
        assert_int_equal(stat(f->path, &a), 0);
        assert_int_equal(rename(tmp, f->path), 0);
        assert_int_equal(stat(f->path, &b), 0);
        assert_int_equal(a.st_size, b.st_size);
        assert_true(a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
                    a.st_mtim.tv_nsec == b.st_mtim.tv_nsec);
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        expect_set(s, "bbbb", NULL);

        /* the same inode and mtime, another size: still a change */
        snprintf(tmp, sizeof(tmp), "%s/.ref", f->dir);
        write_file(tmp, "x");
        copy_mtime(f->path, tmp);
        write_file(f->path, "cccccc\n");
        copy_mtime(tmp, f->path);
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        expect_set(s, "cccccc", NULL);
        dsecrets_destroy(s);
}

static void test_kubernetes_symlink_swap(void **state)
{
        struct fx *f = *state;
        char p[256], q[256], err[256] = "";
        struct dsecrets *s;

        /* <dir>/secrets -> ..data/secrets, ..data -> ts1 (as a projected volume) */
        snprintf(p, sizeof(p), "%s/ts1", f->dir);
        assert_int_equal(mkdir(p, 0700), 0);
        snprintf(p, sizeof(p), "%s/ts1/secrets", f->dir);
        write_file(p, "first\n");
        snprintf(p, sizeof(p), "%s/ts2", f->dir);
        assert_int_equal(mkdir(p, 0700), 0);
        snprintf(p, sizeof(p), "%s/ts2/secrets", f->dir);
        write_file(p, "first\nsecond\n");
        snprintf(p, sizeof(p), "%s/..data", f->dir);
        assert_int_equal(symlink("ts1", p), 0);
        assert_int_equal(symlink("..data/secrets", f->path), 0);

        s = dsecrets_new(NULL, f->path, err, sizeof(err));
        if (!s)
                fail_msg("dsecrets_new: %s", err);
        expect_set(s, "first", NULL);
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 0);

        /* atomic swap of ..data */
        snprintf(q, sizeof(q), "%s/..data_tmp", f->dir);
        assert_int_equal(symlink("ts2", q), 0);
        assert_int_equal(rename(q, p), 0);
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        expect_set(s, "first", "second");
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 0);
        dsecrets_destroy(s);
}

static void test_acquired_set_survives_reload(void **state)
{
        struct fx *f  = *state;
        char err[256] = "";
        struct dsecrets *s;
        struct dsecrets_set *old, *cur;
        char sig[80];

        write_file(f->path, "old-secret\n");
        s = dsecrets_new(NULL, f->path, err, sizeof(err));
        assert_non_null(s);
        old = dsecrets_acquire(s);
        assert_int_equal(atomic_load(&old->refcnt), 2);

        replace_file(f, "new-secret-longer\n");
        assert_int_equal(dsecrets_reload(s, 0, err, sizeof(err)), 1);
        /* the holder dropped its reference; ours keeps the old set alive */
        assert_int_equal(atomic_load(&old->refcnt), 1);
        assert_true(has_secret(old, "old-secret"));
        dsig_sign((const unsigned char *)"old-secret", 10, "b", 1, sig, sizeof(sig));
        assert_int_equal(dsig_verify(old, sig, "b", 1), DSIG_OK);

        cur = dsecrets_acquire(s);
        assert_ptr_not_equal(cur, old);
        assert_int_equal(dsig_verify(cur, sig, "b", 1), DSIG_MISMATCH);
        assert_true(has_secret(cur, "new-secret-longer"));

        /* a second reload while both are held */
        assert_int_equal(dsecrets_reload(s, 1, err, sizeof(err)), 1);
        assert_true(has_secret(cur, "new-secret-longer"));
        assert_true(has_secret(old, "old-secret"));
        dsecrets_release(old);
        dsecrets_release(cur);

        /* a set held past the holder's end */
        cur = dsecrets_acquire(s);
        dsecrets_destroy(s);
        assert_true(has_secret(cur, "new-secret-longer"));
        dsecrets_release(cur);
        dsecrets_release(NULL);
}

struct stress {
        struct dsecrets *s;
        atomic_int stop;
        atomic_int bad;
};

static void *stress_reader(void *arg)
{
        struct stress *st = arg;
        char sig[80];

        dsig_sign((const unsigned char *)"k1", 2, "x", 1, sig, sizeof(sig));
        while (!atomic_load(&st->stop)) {
                struct dsecrets_set *set = dsecrets_acquire(st->s);
                if (set->n != 2 || dsig_verify(set, sig, "x", 1) != DSIG_OK)
                        atomic_fetch_add(&st->bad, 1);
                dsecrets_release(set);
        }
        return NULL;
}

static void test_concurrent_acquire_and_reload(void **state)
{
        struct fx *f  = *state;
        char err[256] = "";
        struct stress st;
        pthread_t th[4];

        write_file(f->path, "k1\nk2\n");
        st.s = dsecrets_new(NULL, f->path, err, sizeof(err));
        assert_non_null(st.s);
        atomic_init(&st.stop, 0);
        atomic_init(&st.bad, 0);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, stress_reader, &st), 0);
        for (int i = 0; i < 500; i++)
                assert_int_equal(dsecrets_reload(st.s, 1, err, sizeof(err)), 1);
        atomic_store(&st.stop, 1);
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        assert_int_equal(atomic_load(&st.bad), 0);
        dsecrets_destroy(st.s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_lines),
            cmocka_unit_test(test_parse_crlf_and_trim),
            cmocka_unit_test(test_parse_empty),
            cmocka_unit_test(test_parse_respects_len),
            cmocka_unit_test(test_env_holder),
            cmocka_unit_test(test_env_blank_and_nothing),
            cmocka_unit_test_setup_teardown(test_file_missing_or_empty_at_start, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_file_reload, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reload_sees_inode_and_size, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_kubernetes_symlink_swap, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_acquired_set_survives_reload, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_acquire_and_reload, setup,
                                            teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
