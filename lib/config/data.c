/* data.c - the data section: where experiment directories live. */
#include "sections.h"

LD_TABLE(, data_table,
         LD_STR_ROW("experiments_dir", LD_PATH, fm_config, data.experiments_dir, NULL,
                    "/var/lib/fetch_ml/experiments", false, NULL));
