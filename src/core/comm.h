/* Several processes ("ranks") training one run, data parallel: the few
 * collectives the library needs, supplied by the caller. The library knows
 * no MPI: cli/mpi.c implements these on MPI_COMM_WORLD (built with MPI=1),
 * and a caller could put them on anything else that moves bytes.
 *
 * Every function is collective: all ranks call it, in the same order, with
 * the same counts. A failure on one rank is that rank's loom_status; the
 * caller stops the whole job (the CLI exits, and mpirun ends the others). */
#ifndef LOOM_COMM_H
#define LOOM_COMM_H

#include "common.h"

typedef struct loom_comm {
    int rank, size; /* this process and how many there are (size >= 1) */
    void *user;
    /* MPI_Alltoallv on bytes: scount[q] bytes from send + sdispl[q] go to
     * rank q; rcount[q] bytes from rank q arrive at recv + rdispl[q] (counts
     * and displacements (size)); send and recv do not overlap */
    loom_status (*alltoallv)(void *user, const void *send, const size_t *scount,
                             const size_t *sdispl, void *recv, const size_t *rcount,
                             const size_t *rdispl, loom_error *err);
    /* MPI_Allgatherv on bytes: scount bytes of send from every rank q arrive
     * at recv + rdispl[q] (rcount[q] == rank q's scount) on every rank */
    loom_status (*allgatherv)(void *user, const void *send, size_t scount, void *recv,
                              const size_t *rcount, const size_t *rdispl, loom_error *err);
    /* *v = the largest of every rank's *v, on every rank */
    loom_status (*max_int)(void *user, int *v, loom_error *err);
} loom_comm;

#endif
