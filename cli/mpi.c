/* loom train under mpirun or srun: the library's loom_comm (src/core/comm.h)
 * on MPI_COMM_WORLD. Compiled only when loom is built with MPI (make MPI=1,
 * or detected: cli/cli.h LOOM_HAVE_MPI); the library itself knows no MPI. */
#include "cli.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static loom_comm world;
static int started;
static cli_mpi_stats stats;

static loom_status mpi_fail(loom_error *err, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return loom_fail(err, LOOM_EIO, "MPI %s: %.*s", what, len, msg);
}

/* counts and displacements in MPI's int */
static loom_status to_int(int *dst, const size_t *src, int n, loom_error *err) {
    for (int i = 0; i < n; i++) {
        if (src[i] > INT_MAX)
            return loom_fail(err, LOOM_EINVAL, "MPI: an exchange of %zu bytes is beyond MPI's int counts",
                             src[i]);
        dst[i] = (int)src[i];
    }
    return LOOM_OK;
}

static loom_status mpi_alltoallv(void *user, const void *send, const size_t *scount,
                                 const size_t *sdispl, void *recv, const size_t *rcount,
                                 const size_t *rdispl, loom_error *err) {
    (void)user;
    const int R = world.size;
    int *v = malloc(4 * (size_t)R * sizeof *v);
    if (!v) return loom_fail(err, LOOM_ENOMEM, "MPI: out of memory");
    loom_status st = to_int(v, scount, R, err);
    if (!st) st = to_int(v + R, sdispl, R, err);
    if (!st) st = to_int(v + 2 * R, rcount, R, err);
    if (!st) st = to_int(v + 3 * R, rdispl, R, err);
    if (!st) {
        const double t0 = MPI_Wtime();
        int rc = MPI_Alltoallv(send, v, v + R, MPI_BYTE, recv, v + 2 * R, v + 3 * R, MPI_BYTE,
                               MPI_COMM_WORLD);
        stats.seconds += MPI_Wtime() - t0;
        if (rc != MPI_SUCCESS) st = mpi_fail(err, rc, "all-to-all");
        for (int q = 0; q < R; q++)
            if (q != world.rank) stats.bytes_sent += (double)scount[q];
    }
    free(v);
    return st;
}

static loom_status mpi_allgatherv(void *user, const void *send, size_t scount, void *recv,
                                  const size_t *rcount, const size_t *rdispl, loom_error *err) {
    (void)user;
    const int R = world.size;
    int *v = malloc(2 * (size_t)R * sizeof *v), n = 0;
    if (!v) return loom_fail(err, LOOM_ENOMEM, "MPI: out of memory");
    loom_status st = to_int(v, rcount, R, err);
    if (!st) st = to_int(v + R, rdispl, R, err);
    if (!st) st = to_int(&n, &scount, 1, err);
    if (!st) {
        const double t0 = MPI_Wtime();
        int rc = MPI_Allgatherv(send, n, MPI_BYTE, recv, v, v + R, MPI_BYTE, MPI_COMM_WORLD);
        stats.seconds += MPI_Wtime() - t0;
        if (rc != MPI_SUCCESS) st = mpi_fail(err, rc, "all-gather");
        stats.bytes_sent += (double)scount * (R - 1);
    }
    free(v);
    return st;
}

static loom_status mpi_max_int(void *user, int *v, loom_error *err) {
    (void)user;
    const double t0 = MPI_Wtime();
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    stats.seconds += MPI_Wtime() - t0;
    return rc == MPI_SUCCESS ? LOOM_OK : mpi_fail(err, rc, "all-reduce");
}

const loom_comm *cli_mpi_start(int *local_size) {
    *local_size = 1;
    if (!started) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS) cli_die(1, "MPI_Init failed");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        world = (loom_comm){.alltoallv = mpi_alltoallv, .allgatherv = mpi_allgatherv,
                            .max_int = mpi_max_int};
        MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world.size);
        started = 1;
    }
    /* ranks on this machine: they share its cores */
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, local_size);
        MPI_Comm_free(&node);
    }
    return &world;
}

void cli_mpi_end(void) {
    if (started) MPI_Finalize();
    started = 0;
}

cli_mpi_stats cli_mpi_get_stats(void) { return stats; }
