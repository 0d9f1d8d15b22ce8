/* Which launcher started this process, from its environment, in every build:
 * a loom without MPI started as many ranks must refuse rather than run as
 * many independent copies writing one run directory. */
#include "cli.h"

#include <stdlib.h>

static int env_int(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 0 || n > 1000000 ? -1 : (int)n;
}

int cli_launcher_ranks(void) {
    /* Open MPI's mpirun; MPICH's and Intel's mpiexec (PMI); Slurm's srun */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        int n = env_int(vars[i]);
        if (n > 0) return n;
    }
    return getenv("PMIX_RANK") ? 1 : 0; /* PMIx (srun --mpi=pmix) without a size */
}
